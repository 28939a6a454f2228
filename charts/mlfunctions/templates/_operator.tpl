{{/* Selector labels of the operator's pods: only labels that never change between releases (a Deployment's
selector is immutable, so chart and app versions must stay out of it). */}}
{{- define "mlfunctions.operatorSelectorLabels" -}}
app.kubernetes.io/name: {{ include "mlfunctions.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Where the operator's container sees the gateway's basic-auth Secret (gatewayAPI mode). */}}
{{- define "mlfunctions.gatewayCredentialsDir" -}}
/var/run/secrets/mlfunctions/openfaas-gateway
{{- end -}}

{{/* The operator's /metrics port: operator.metricsPort, or (0) the health port, one server answering both. */}}
{{- define "mlfunctions.operatorMetricsPort" -}}
{{- .Values.operator.metricsPort | default .Values.operator.healthPort | int -}}
{{- end -}}
