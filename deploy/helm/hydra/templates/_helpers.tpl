{{/*
Names, labels and the pieces every Hydra workload shares.
*/}}

{{/* The chart name, overridable, cut to the 63 characters a DNS label allows. */}}
{{- define "hydra.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name. Component objects append "-<component>" (at most 13 more
characters, "-tfserving-headless" being the longest suffix), so the base is cut to 44: every
name stays a valid 63-character DNS label.
*/}}
{{- define "hydra.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 44 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 44 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 44 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>", for a dict with "root" and "component". */}}
{{- define "hydra.componentName" -}}
{{- printf "%s-%s" (include "hydra.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "hydra.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that select a component's pods: stable across upgrades. */}}
{{- define "hydra.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hydra.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Every object's labels (standard app.kubernetes.io set). */}}
{{- define "hydra.labels" -}}
helm.sh/chart: {{ include "hydra.chart" .root }}
{{ include "hydra.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: hydra
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels for chart-wide objects that belong to no one component. */}}
{{- define "hydra.chartLabels" -}}
{{ include "hydra.labels" (dict "root" . "component" "hydra") }}
{{- end }}

{{/* "repository:tag" of a component image; the tag defaults to the chart's appVersion. */}}
{{- define "hydra.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- $repo := .image.repository -}}
{{- if and $registry (not (contains "/" $repo)) -}}
{{- $repo = printf "%s/%s" $registry $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion .image.tag | toString) -}}
{{- end }}

{{- define "hydra.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-level security: non-root, no privilege escalation, RuntimeDefault seccomp. */}}
{{- define "hydra.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.security.runAsUser }}
runAsGroup: {{ .Values.security.runAsGroup }}
fsGroup: {{ .Values.security.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level security: read-only root file system, every capability dropped. */}}
{{- define "hydra.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.security.runAsUser }}
runAsGroup: {{ .Values.security.runAsGroup }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The database URL: from the bundled MariaDB's Secret or the operator's own. */}}
{{- define "hydra.databaseSecretName" -}}
{{- if .Values.mariadb.enabled -}}
{{- default (include "hydra.componentName" (dict "root" . "component" "mariadb")) .Values.mariadb.auth.existingSecret -}}
{{- else -}}
{{- required "database.existingSecret is required when mariadb.enabled is false (a Secret holding HYDRA_DATABASE_URL)" .Values.database.existingSecret -}}
{{- end -}}
{{- end }}

{{- define "hydra.databaseSecretKey" -}}
{{- if .Values.mariadb.enabled -}}HYDRA_DATABASE_URL{{- else -}}{{ .Values.database.secretKey }}{{- end -}}
{{- end }}

{{/* The env entry that every database client gets. */}}
{{- define "hydra.databaseEnv" -}}
- name: HYDRA_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "hydra.databaseSecretName" . }}
      key: {{ include "hydra.databaseSecretKey" . }}
{{- end }}

{{/* What every Hydra container reads: the shared ConfigMap, then the database URL. */}}
{{- define "hydra.envFrom" -}}
envFrom:
  - configMapRef:
      name: {{ include "hydra.componentName" (dict "root" . "component" "env") }}
{{- end }}

{{/* Checksum of the shared configuration: pods roll when it changes. */}}
{{- define "hydra.configChecksum" -}}
checksum/config: {{ include (print .Template.BasePath "/configmap-env.yaml") . | sha256sum }}
{{- end }}

{{/* Scheduling fields of a component's pod spec. */}}
{{- define "hydra.scheduling" -}}
{{- with .values.nodeSelector }}
nodeSelector:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
{{ toYaml . | indent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/* A model-server model name from a plot type: what Hydra's trainer writes. */}}
{{- define "hydra.modelName" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" . "_" -}}
{{- end }}

{{/* The service name used for `metrics` probes and ServiceMonitor ports. */}}
{{- define "hydra.metricsPort" -}}
- name: metrics
  containerPort: {{ . }}
  protocol: TCP
{{- end }}

{{/* The /tmp emptyDir every container gets (the root file system is read-only). */}}
{{- define "hydra.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: 64Mi
{{- end }}

{{- define "hydra.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Volume of the image storage (keeper rw, API and trainer ro). */}}
{{- define "hydra.storageClaimName" -}}
{{- default (include "hydra.componentName" (dict "root" . "component" "storage")) .Values.storage.images.existingClaim -}}
{{- end }}

{{/* Volume of the model repository (trainer rw, TF Serving ro). */}}
{{- define "hydra.modelsClaimName" -}}
{{- default (include "hydra.componentName" (dict "root" . "component" "models")) .Values.storage.models.existingClaim -}}
{{- end }}

{{/* Where the bundled model server or TF Serving listens, as the predictor dials it. */}}
{{- define "hydra.modelServerAddress" -}}
{{- $headless := include "hydra.componentName" (dict "root" . "component" "tfserving-headless") -}}
{{- printf "dns:///%s:%d" $headless (int .Values.tfserving.grpcPort) -}}
{{- end }}

{{/*
The Status page's live figures: `service=URL` of the /metrics of the services that leave no
heartbeat in the database (HYDRA_STATUS_TARGETS of the API).
*/}}
{{- define "hydra.statusTargets" -}}
{{- $targets := list }}
{{- range $component := list "feeder" "balancer" "predictor" }}
{{- $v := index $.Values $component }}
{{- if $v.enabled }}
{{- $targets = append $targets (printf "%s=http://%s:%v/metrics" $component (include "hydra.componentName" (dict "root" $ "component" $component)) $v.metricsPort) }}
{{- end }}
{{- end }}
{{- if and .Values.tfserving.enabled (eq .Values.tfserving.server "hydra-modelserver") }}
{{- $targets = append $targets (printf "modelserver=http://%s:%v/metrics" (include "hydra.componentName" (dict "root" $ "component" "tfserving")) .Values.tfserving.metricsPort) }}
{{- end }}
{{- join "," $targets }}
{{- end }}

{{- /*
How long Kubernetes waits after SIGTERM before it kills a Hydra pod: the service's own grace
(HYDRA_GRACE_SECONDS from the component's env, else extraEnv, else the services' default of
10 s) plus 20 s for the last commit and the interpreter's exit. Raising the grace in values
therefore never gets a draining service killed half way.
*/}}
{{- define "hydra.terminationGrace" -}}
{{- $own := get (default (dict) .values.env) "HYDRA_GRACE_SECONDS" -}}
{{- $all := get (default (dict) .root.Values.extraEnv) "HYDRA_GRACE_SECONDS" -}}
{{- $grace := or $own $all 10 -}}
terminationGracePeriodSeconds: {{ add 20 (ceil (float64 $grace) | int) }}
{{- end }}

{{/* The trainer's image: `<tag>-gpu` for the CUDA variant (`make images` builds both). */}}
{{- define "hydra.trainerImage" -}}
{{- $v := .Values.trainer.image -}}
{{- $tag := default .Chart.AppVersion $v.tag | toString -}}
{{- if eq $v.variant "gpu" }}{{ $tag = printf "%s-gpu" $tag }}{{ end -}}
{{- include "hydra.image" (dict "root" . "image" (dict "repository" $v.repository "tag" $tag)) -}}
{{- end }}

{{/* The model-config sidecar's image: its own, or the API's (a Hydra image without TensorFlow). */}}
{{- define "hydra.modelConfigImage" -}}
{{- $own := .Values.tfserving.modelConfig.image -}}
{{- $api := .Values.api.image -}}
{{- $image := dict "repository" (default $api.repository $own.repository) "tag" (ternary $own.tag $api.tag (ne $own.repository "")) -}}
{{- include "hydra.image" (dict "root" . "image" $image) -}}
{{- end }}

{{/* Where TF Serving reads, and the model-config sidecar writes, the model list. */}}
{{- define "hydra.modelConfigFile" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.storage.models.mountPath) .Values.tfserving.modelConfig.file -}}
{{- end }}

{{/*
Combinations that render but cannot work: refused at `helm template` / `helm install`.
*/}}
{{- define "hydra.validate" -}}
{{- range $component := list "balancer" "feeder" "keeper" }}
{{- $v := index $.Values $component }}
{{- if and $v.enabled (gt (int $v.replicas) 1) }}
{{- if eq $component "balancer" }}
{{- fail (printf "balancer.replicas is %d: must be 1 (the queue lives in one balancer's memory; a second would strand the orders sent to it)" (int $v.replicas)) }}
{{- else if eq $component "keeper" }}
{{- fail (printf "keeper.replicas is %d: must be 1 (transitions and K-of-N alarms are decided from one keeper's view of each plot type's last verdicts; two would each see half)" (int $v.replicas)) }}
{{- else }}
{{- fail (printf "feeder.replicas is %d: must be 1 (two feeders on one input directory send every image twice)" (int $v.replicas)) }}
{{- end }}
{{- end }}
{{- end }}
{{- $tfs := .Values.tfserving }}
{{- if and .Values.predictor.enabled $tfs.enabled $tfs.batching.enabled (gt (int .Values.predictor.maxBatch) (int $tfs.batching.maxBatchSize)) }}
{{- fail (printf "predictor.maxBatch (%d) > tfserving.batching.maxBatchSize (%d): TF Serving refuses larger batches with INVALID_ARGUMENT; raise maxBatchSize or lower maxBatch" (int .Values.predictor.maxBatch) (int $tfs.batching.maxBatchSize)) }}
{{- end }}
{{- if and .Values.autoscaling.keda.enabled .Values.autoscaling.hpa.enabled }}
{{- fail "autoscaling.keda.enabled and autoscaling.hpa.enabled are both true: KEDA creates its own HPA, and two HPAs on one Deployment fight; enable one" }}
{{- end }}
{{- if not (has .Values.trainer.image.variant (list "gpu" "cpu")) }}
{{- fail (printf "trainer.image.variant must be gpu or cpu, not %q" .Values.trainer.image.variant) }}
{{- end }}
{{- end }}

{{/* The liveness probe of a Hydra service: /livez on its metrics port answers 200 only while
the service's event loop updates its heartbeat (hydra_common.metrics). */}}
{{- define "hydra.livenessProbe" -}}
livenessProbe:
  httpGet: {path: /livez, port: metrics}
  initialDelaySeconds: 10
  periodSeconds: 15
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}
