{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "brownout.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: the release name, with the chart name unless it already contains it. */}}
{{- define "brownout.fullname" -}}
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

{{- define "brownout.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "brownout.labels" -}}
helm.sh/chart: {{ include "brownout.chart" . }}
{{ include "brownout.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: brownout
{{- end }}

{{- define "brownout.selectorLabels" -}}
app.kubernetes.io/name: {{ include "brownout.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "brownout.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "brownout.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "brownout.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Checks across values that values.schema.json cannot express. Included by every template that
renders a workload, so `helm template` and `helm install` stop with a message naming the value.
*/}}
{{- define "brownout.validate" -}}
{{- $partitions := int .Values.kafka.partitions }}
{{- if and .Values.autoscaling.enabled .Values.keda.enabled }}
{{- fail "autoscaling.enabled and keda.enabled are mutually exclusive: KEDA manages its own HorizontalPodAutoscaler" }}
{{- end }}
{{- if gt (int .Values.replicaCount) $partitions }}
{{- fail (printf "replicaCount (%d) must not exceed kafka.partitions (%d): a consumer beyond the events topic's partitions sits idle" (int .Values.replicaCount) $partitions) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.maxReplicas) $partitions) }}
{{- fail (printf "autoscaling.maxReplicas (%d) must not exceed kafka.partitions (%d)" (int .Values.autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.autoscaling.minReplicas) (int .Values.autoscaling.maxReplicas)) }}
{{- fail "autoscaling.minReplicas must not exceed autoscaling.maxReplicas" }}
{{- end }}
{{- if and .Values.keda.enabled (gt (int .Values.keda.maxReplicaCount) $partitions) }}
{{- fail (printf "keda.maxReplicaCount (%d) must not exceed kafka.partitions (%d)" (int .Values.keda.maxReplicaCount) $partitions) }}
{{- end }}
{{- if and .Values.keda.enabled (gt (int .Values.keda.minReplicaCount) (int .Values.keda.maxReplicaCount)) }}
{{- fail "keda.minReplicaCount must not exceed keda.maxReplicaCount" }}
{{- end }}
{{- $sasl := hasPrefix "SASL_" .Values.kafka.securityProtocol }}
{{- if and $sasl (not .Values.kafka.sasl.mechanism) }}
{{- fail (printf "kafka.sasl.mechanism is required with kafka.securityProtocol=%s" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and $sasl (not .Values.kafka.sasl.existingSecret) }}
{{- fail "kafka.sasl.existingSecret is required with a SASL security protocol (the password is read from that Secret)" }}
{{- end }}
{{- if and $sasl (not .Values.kafka.sasl.username) }}
{{- fail "kafka.sasl.username is required with a SASL security protocol" }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not $sasl) }}
{{- fail (printf "kafka.sasl.mechanism is set but kafka.securityProtocol is %s: use SASL_SSL or SASL_PLAINTEXT" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if ne (empty .Values.kafka.tls.certKey) (empty .Values.kafka.tls.keyKey) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mutual TLS needs both)" }}
{{- end }}
{{- if and .Values.kafka.tls.certKey (not .Values.kafka.tls.existingSecret) }}
{{- fail "kafka.tls.certKey needs kafka.tls.existingSecret" }}
{{- end }}
{{- if and .Values.keda.enabled $sasl (not .Values.keda.authenticationRef.name) }}
{{- fail "keda.authenticationRef.name is required on a SASL cluster: KEDA reads the consumer lag with its own credentials (see docs/deploy.md)" }}
{{- end }}
{{- end }}

{{/* Where the chart mounts things inside the container. */}}
{{- define "brownout.paths" -}}
config: /etc/brownout/config/config.yaml
rules: /etc/brownout/config/rules.yaml
kafkaPassword: /etc/brownout/secrets/kafka-sasl/password
kafkaTls: /etc/brownout/secrets/kafka-tls
slack: /etc/brownout/secrets/slack/webhook-url
pagerduty: /etc/brownout/secrets/pagerduty/routing-key
signing: /etc/brownout/secrets/signing/key
data: /var/lib/brownout
{{- end }}

{{/* The collector's config file (docs: brownout/collector/settings.py). No secret is ever written here. */}}
{{- define "brownout.config" -}}
{{- $p := include "brownout.paths" . | fromYaml }}
{{- $tls := .Values.kafka.tls -}}
kafka:
  bootstrap_servers: {{ .Values.kafka.bootstrapServers | quote }}
  security_protocol: {{ .Values.kafka.securityProtocol }}
  sasl_mechanism: {{ if .Values.kafka.sasl.mechanism }}{{ .Values.kafka.sasl.mechanism }}{{ else }}null{{ end }}
  sasl_username: {{ if .Values.kafka.sasl.username }}{{ .Values.kafka.sasl.username | quote }}{{ else }}null{{ end }}
  ssl_cafile: {{ if $tls.existingSecret }}{{ printf "%s/%s" $p.kafkaTls $tls.caKey | quote }}{{ else }}null{{ end }}
  ssl_certfile: {{ if $tls.certKey }}{{ printf "%s/%s" $p.kafkaTls $tls.certKey | quote }}{{ else }}null{{ end }}
  ssl_keyfile: {{ if $tls.keyKey }}{{ printf "%s/%s" $p.kafkaTls $tls.keyKey | quote }}{{ else }}null{{ end }}
  partitions: {{ int .Values.kafka.partitions }}
  replication_factor: {{ int .Values.kafka.replicationFactor }}
  retention_hours: {{ int .Values.kafka.retentionHours }}
  # null: the pod name (POD_NAME, from the downward API); "": dynamic membership
  group_instance_id: {{ if .Values.kafka.staticMembership }}null{{ else }}""{{ end }}
  session_timeout: {{ .Values.kafka.sessionTimeoutSeconds }}
topics:
  events: {{ .Values.topics.events | quote }}
  control: {{ .Values.topics.control | quote }}
  state: {{ .Values.topics.state | quote }}
  dead_letter: {{ .Values.topics.deadLetter | quote }}
  keyed: {{ if .Values.topics.keyed }}{{ .Values.topics.keyed | quote }}{{ else }}null{{ end }}
group_id: {{ .Values.groupId | quote }}
default_region: {{ if .Values.collector.defaultRegion }}{{ .Values.collector.defaultRegion | quote }}{{ else }}null{{ end }}
regions:
{{- if .Values.collector.regions }}
{{- range $host, $region := .Values.collector.regions }}
  {{ $host | quote }}: {{ $region | quote }}
{{- end }}
{{- else }} {}
{{- end }}
rules_file: {{ if .Values.rules }}{{ $p.rules | quote }}{{ else }}null{{ end }}
batch_size: {{ int .Values.collector.batchSize }}
log_level: {{ .Values.collector.logLevel }}
state:
  interval: {{ .Values.collector.stateIntervalSeconds }}
health:
  max_poll_gap: {{ .Values.collector.maxPollGapSeconds }}
metrics:
  host: 0.0.0.0
  port: {{ int .Values.metrics.port }}
  max_keys: {{ int .Values.collector.maxKeys }}
  otlp_endpoint: {{ if .Values.metrics.otlpEndpoint }}{{ .Values.metrics.otlpEndpoint | quote }}{{ else }}null{{ end }}
  otlp_interval: {{ .Values.metrics.otlpIntervalSeconds }}
notify:
  slack_webhook_url_file: {{ if .Values.notify.slack.existingSecret }}{{ $p.slack | quote }}{{ else }}null{{ end }}
  pagerduty_routing_key_file: {{ if .Values.notify.pagerduty.existingSecret }}{{ $p.pagerduty | quote }}{{ else }}null{{ end }}
  alertmanager_url: {{ if .Values.notify.alertmanagerUrl }}{{ .Values.notify.alertmanagerUrl | quote }}{{ else }}null{{ end }}
  webhook_url: {{ if .Values.notify.webhookUrl }}{{ .Values.notify.webhookUrl | quote }}{{ else }}null{{ end }}
  runbook_url: {{ if .Values.notify.runbookUrl }}{{ .Values.notify.runbookUrl | quote }}{{ else }}null{{ end }}
  outbox_dir: {{ printf "%s/outbox" $p.data | quote }}
signing:
  key_file: {{ if .Values.signing.existingSecret }}{{ $p.signing | quote }}{{ else }}null{{ end }}
  previous_key_files:
{{- if and .Values.signing.existingSecret .Values.signing.previousKeys }}
{{- range .Values.signing.previousKeys }}
    {{ . | quote }}: {{ printf "%s/previous-%s" (dir $p.signing) . | quote }}
{{- end }}
{{- else }} {}
{{- end }}
{{- end }}

{{/* ConfigMap data: the config file, and the rules file when rules are given. */}}
{{- define "brownout.configData" -}}
config.yaml: |
{{ include "brownout.config" . | indent 2 }}
{{- if .Values.rules }}
rules.yaml: |
{{ .Values.rules | indent 2 }}
{{- end }}
{{- end }}

{{/* Environment shared by the collector and the init-topics Job. */}}
{{- define "brownout.env" -}}
{{- $p := include "brownout.paths" . | fromYaml -}}
- name: BROWNOUT_CONFIG
  value: {{ $p.config | quote }}
{{- if .Values.kafka.sasl.existingSecret }}
- name: BROWNOUT_KAFKA_SASL_PASSWORD_FILE
  value: {{ $p.kafkaPassword | quote }}
{{- end }}
- name: HOME
  value: /tmp
{{- range .Values.extraEnv }}
- name: {{ .name }}
  {{- if hasKey . "value" }}
  value: {{ .value | toString | quote }}
  {{- end }}
  {{- with .valueFrom }}
  valueFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
Volumes of the collector and the init-topics Job: (list $ configMapName kafkaOnly). The Job
(kafkaOnly true) gets the Kafka credentials and none of the notification or signing secrets.
*/}}
{{- define "brownout.volumes" -}}
{{- $root := index . 0 }}
{{- $configMap := index . 1 }}
{{- $all := not (index . 2) }}
{{- $v := $root.Values -}}
- name: config
  configMap:
    name: {{ $configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
- name: data
  emptyDir:
    sizeLimit: 256Mi
{{- if $v.kafka.sasl.existingSecret }}
- name: kafka-sasl
  secret:
    secretName: {{ $v.kafka.sasl.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.kafka.sasl.passwordKey }}
        path: password
{{- end }}
{{- if $v.kafka.tls.existingSecret }}
- name: kafka-tls
  secret:
    secretName: {{ $v.kafka.tls.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.kafka.tls.caKey }}
        path: {{ $v.kafka.tls.caKey }}
      {{- if $v.kafka.tls.certKey }}
      - key: {{ $v.kafka.tls.certKey }}
        path: {{ $v.kafka.tls.certKey }}
      - key: {{ $v.kafka.tls.keyKey }}
        path: {{ $v.kafka.tls.keyKey }}
      {{- end }}
{{- end }}
{{- if and $all $v.notify.slack.existingSecret }}
- name: slack
  secret:
    secretName: {{ $v.notify.slack.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.notify.slack.key }}
        path: webhook-url
{{- end }}
{{- if and $all $v.notify.pagerduty.existingSecret }}
- name: pagerduty
  secret:
    secretName: {{ $v.notify.pagerduty.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.notify.pagerduty.key }}
        path: routing-key
{{- end }}
{{- if and $all $v.signing.existingSecret }}
- name: signing
  secret:
    secretName: {{ $v.signing.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ $v.signing.key }}
        path: key
      {{- range $v.signing.previousKeys }}
      - key: {{ . }}
        path: previous-{{ . }}
      {{- end }}
{{- end }}
{{- end }}

{{/* Mounts matching "brownout.volumes": (list $ kafkaOnly). */}}
{{- define "brownout.volumeMounts" -}}
{{- $root := index . 0 }}
{{- $all := not (index . 1) }}
{{- $p := include "brownout.paths" $root | fromYaml -}}
- name: config
  mountPath: {{ dir $p.config }}
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: {{ $p.data }}
{{- if $root.Values.kafka.sasl.existingSecret }}
- name: kafka-sasl
  mountPath: {{ dir $p.kafkaPassword }}
  readOnly: true
{{- end }}
{{- if $root.Values.kafka.tls.existingSecret }}
- name: kafka-tls
  mountPath: {{ $p.kafkaTls }}
  readOnly: true
{{- end }}
{{- if and $all $root.Values.notify.slack.existingSecret }}
- name: slack
  mountPath: {{ dir $p.slack }}
  readOnly: true
{{- end }}
{{- if and $all $root.Values.notify.pagerduty.existingSecret }}
- name: pagerduty
  mountPath: {{ dir $p.pagerduty }}
  readOnly: true
{{- end }}
{{- if and $all $root.Values.signing.existingSecret }}
- name: signing
  mountPath: {{ dir $p.signing }}
  readOnly: true
{{- end }}
{{- end }}
