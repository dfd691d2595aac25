{{/* Names are cut to 63 characters: some Kubernetes name fields allow no more. */}}
{{- define "wsrelay.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "wsrelay.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "wsrelay.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The recommended app.kubernetes.io labels. */}}
{{- define "wsrelay.labels" -}}
helm.sh/chart: {{ include "wsrelay.chart" . }}
{{ include "wsrelay.selectorLabels" . }}
app.kubernetes.io/version: {{ (default .Chart.AppVersion .Values.image.tag) | quote }}
app.kubernetes.io/component: relay
app.kubernetes.io/part-of: wsrelay
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "wsrelay.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsrelay.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "wsrelay.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wsrelay.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "wsrelay.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "wsrelay.authSecretName" -}}
{{- default (printf "%s-auth" (include "wsrelay.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* True when the pods get WSRELAY_AUTH_TOKENS from a Secret. */}}
{{- define "wsrelay.hasAuth" -}}
{{- if or .Values.auth.existingSecret .Values.auth.tokens }}true{{ end }}
{{- end }}

{{/* Where the TLS serving Secret and the upstream CA Secret are mounted (read-only). */}}
{{- define "wsrelay.tlsDir" -}}/etc/wsrelay/tls{{- end }}
{{- define "wsrelay.upstreamCADir" -}}/etc/wsrelay/upstream-ca{{- end }}

{{/* http, or https when wsrelay serves TLS itself (tls.existingSecret): for probes and scrapes. */}}
{{- define "wsrelay.scheme" -}}
{{- if .Values.tls.existingSecret }}https{{ else }}http{{ end }}
{{- end }}

{{/*
Seconds a pod may take to stop. There is no preStop hook: on SIGTERM wsrelay itself answers
/readyz with 503 and refuses new handshakes for config.shutdownDelay (while the endpoint removal
reaches kube-proxy and the ingress controllers), then closes its clients; the whole drain, the
delay included, ends within config.shutdownTimeout of SIGTERM (when shutdownDelay +
shutdownSpread would not fit, wsrelay cuts the spread). The grace period is shutdownDelay +
shutdownTimeout (rounded up) plus a margin: more than the drain needs, kept so that no
rendered grace period shrinks. An explicit value that is not longer fails the render instead of
risking SIGKILL cutting the drain.
*/}}
{{- define "wsrelay.terminationGracePeriodSeconds" -}}
{{- include "wsrelay.checkShutdown" . }}
{{- $c := .Values.config }}
{{- $needed := int (ceil (addf $c.shutdownDelay $c.shutdownTimeout)) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than config.shutdownDelay + config.shutdownTimeout (%v)" .Values.terminationGracePeriodSeconds $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/*
wsrelay refuses to start (exit 2) when shutdownDelay or a non-zero shutdownSpread is not below
shutdownTimeout; the chart refuses to render such values rather than roll out crashing pods.
Delay + spread past the timeout is accepted by both: wsrelay cuts the spread to fit.
*/}}
{{- define "wsrelay.checkShutdown" -}}
{{- $c := .Values.config }}
{{- if ge (float64 $c.shutdownDelay) (float64 $c.shutdownTimeout) }}
{{- fail (printf "config.shutdownDelay (%v) must be below config.shutdownTimeout (%v)" $c.shutdownDelay $c.shutdownTimeout) }}
{{- end }}
{{- if and $c.shutdownSpread (ge (float64 $c.shutdownSpread) (float64 $c.shutdownTimeout)) }}
{{- fail (printf "config.shutdownSpread (%v) must be below config.shutdownTimeout (%v)" $c.shutdownSpread $c.shutdownTimeout) }}
{{- end }}
{{- end }}

{{/*
WSRELAY_BACKPLANE_URL may carry a password (redis://:PASSWORD@host, or ?password=): such a URL
is kept in a Secret, never the ConfigMap. backplane.existingSecret names one you manage; else a
config.backplaneUrl with userinfo (user:password@) or a password query parameter goes into a
Secret the chart makes; a URL without credentials stays in the ConfigMap.
*/}}
{{- define "wsrelay.backplaneHasCredentials" -}}
{{- $url := .Values.config.backplaneUrl }}
{{- if or (regexMatch "^[^:/?#]+://[^/?#]*@" $url) (regexMatch (include "wsrelay.passwordOption" .) $url) }}true{{ end }}
{{- end }}

{{/*
A query option redis-py reads as the password: its name decodes to "password", so any letter
may be percent-encoded (passw%6Frd=), as wsrelay's own masking (service/urlsecrets.py) reads it.
Helm has no URL decoding: the regex spells out each letter's two forms.
*/}}
{{- define "wsrelay.passwordOption" -}}
[?&](?:p|%70)(?:a|%61)(?:s|%73)(?:s|%73)(?:w|%77)(?:o|%6[Ff])(?:r|%72)(?:d|%64)=
{{- end }}

{{/* "existing", "chart" (a Secret of this release) or "" (the ConfigMap holds the URL). */}}
{{- define "wsrelay.backplaneSecret" -}}
{{- if .Values.backplane.existingSecret }}existing
{{- else if include "wsrelay.backplaneHasCredentials" . }}chart
{{- end }}
{{- end }}

{{- define "wsrelay.backplaneSecretName" -}}
{{- default (printf "%s-backplane" (include "wsrelay.fullname" .)) .Values.backplane.existingSecret }}
{{- end }}

{{/*
The backplane URL to show (NOTES): the userinfo's password and a password query parameter read
***, as `wsrelay check-config` and the logs show them.
*/}}
{{- define "wsrelay.maskedBackplaneUrl" -}}
{{- $url := regexReplaceAll "^([^:/?#]+://[^:@/?#]*):[^/?#]*@" .Values.config.backplaneUrl "${1}:***@" }}
{{- regexReplaceAll (printf "(%s)[^&#]*" (include "wsrelay.passwordOption" .)) $url "${1}***" }}
{{- end }}
