{{- define "rr.name" -}}release-readiness{{- end -}}
{{- define "rr.fullname" -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "rr.labels" -}}
app.kubernetes.io/name: release-readiness
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "rr.selector" -}}
app.kubernetes.io/name: release-readiness
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "rr.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "rr.certSecret" -}}{{ include "rr.fullname" . }}-webhook-tls{{- end -}}
