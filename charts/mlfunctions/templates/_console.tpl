{{/* Names and labels of the console's objects (console-*.yaml). */}}

{{- define "mlfunctions.consoleName" -}}
{{- printf "%s-console" (include "mlfunctions.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "mlfunctions.consoleServiceAccountName" -}}
{{- if .Values.console.serviceAccount.create -}}
{{- default (include "mlfunctions.consoleName" .) .Values.console.serviceAccount.name -}}
{{- else -}}
{{- required "console.serviceAccount.name is required when console.serviceAccount.create is false" .Values.console.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret with the console's login (keys username and password): the user's, or the chart's. */}}
{{- define "mlfunctions.consoleAuthSecret" -}}
{{- default (printf "%s-auth" (include "mlfunctions.consoleName" .)) .Values.console.auth.existingSecret -}}
{{- end -}}

{{- define "mlfunctions.consoleLabels" -}}
{{ include "mlfunctions.labels" . }}
app.kubernetes.io/component: console
{{- end -}}

{{/* Selector labels: only labels that never change between releases (a Deployment's selector is immutable). */}}
{{- define "mlfunctions.consoleSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mlfunctions.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: console
{{- end -}}
