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

{{/*
Seconds a pod may take to stop: the preStop sleep (shutdownDelay), then wsrelay's own
shutdownDelay and drain (shutdownTimeout), plus a margin. An explicit value that is too short
fails the render instead of letting SIGKILL cut the drain.
*/}}
{{- define "wsrelay.terminationGracePeriodSeconds" -}}
{{- $c := .Values.config }}
{{- $needed := add (mul 2 $c.shutdownDelay) $c.shutdownTimeout }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 10 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than 2 x config.shutdownDelay + config.shutdownTimeout (%v)" .Values.terminationGracePeriodSeconds $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}
