{{/* Pieces of the NetworkPolicies (networkpolicy.yaml). */}}

{{- define "hydra.np.peer" -}}
- podSelector:
    matchLabels:
      {{- include "hydra.selectorLabels" . | nindent 6 }}
{{- end }}
{{- define "hydra.np.external" -}}
- namespaceSelector:
    {{- toYaml .namespaceSelector | nindent 4 }}
  podSelector:
    {{- toYaml .podSelector | nindent 4 }}
{{- end }}
{{- define "hydra.np.dns" -}}
- to:
    {{- include "hydra.np.external" .Values.networkPolicy.dns | nindent 4 }}
  ports:
    - {protocol: UDP, port: 53}
    - {protocol: TCP, port: 53}
{{- end }}
{{- define "hydra.np.database" -}}
{{- if .Values.mariadb.enabled -}}
- to:
    {{- include "hydra.np.peer" (dict "root" . "component" "mariadb") | nindent 4 }}
  ports:
    - {protocol: TCP, port: 3306}
{{- else -}}
- to:
    {{- range .Values.database.networkPolicy.cidrs }}
    - ipBlock: {cidr: {{ . }}}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ .Values.database.networkPolicy.port }}}
{{- end }}
{{- end }}
{{- define "hydra.np.metrics" -}}
- from:
    {{- include "hydra.np.external" .root.Values.networkPolicy.prometheus | nindent 4 }}
    {{- if .api }}
    # The API reads these figures for the Status page (HYDRA_STATUS_TARGETS).
    {{- include "hydra.np.peer" (dict "root" .root "component" "api") | nindent 4 }}
    {{- end }}
  ports:
    - {protocol: TCP, port: {{ .port }}}
{{- end }}
{{- define "hydra.np.head" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "hydra.componentName" . }}
  labels:
    {{- include "hydra.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "hydra.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
{{- end }}
