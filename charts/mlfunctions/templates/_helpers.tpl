{{/* Names and labels shared by every template of the chart. */}}

{{- define "mlfunctions.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-mlfunctions, or the release name alone when it already contains the chart name. */}}
{{- define "mlfunctions.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "mlfunctions.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "mlfunctions.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The operator's objects (ServiceAccount, RBAC, Deployment) are named after it. */}}
{{- define "mlfunctions.operatorName" -}}
{{- printf "%s-operator" (include "mlfunctions.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlfunctions.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "mlfunctions.operatorName" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mlfunctions.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "mlfunctions.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlfunctions
{{- end -}}

{{- define "mlfunctions.operatorLabels" -}}
{{ include "mlfunctions.labels" . }}
app.kubernetes.io/component: operator
{{- end -}}
