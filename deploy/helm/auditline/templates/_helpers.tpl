{{/* Names: <release>-auditline unless the release name already says auditline. */}}
{{- define "auditline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "auditline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: auditline
{{- end -}}

{{/* selector labels of one stage: (dict "root" $ "stage" "ingest") */}}
{{- define "auditline.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .stage }}
{{- end -}}

{{- define "auditline.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "auditline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "auditline.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{- define "auditline.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-env" (include "auditline.fullname" .)) -}}
{{- end -}}

{{/* auditline.yaml: the user's config with the listeners the chart owns. */}}
{{- define "auditline.config" -}}
{{- $forced := dict
      "ops" (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)))
      "ingest" (dict "listen" (printf "0.0.0.0:%d" (int .Values.stages.ingest.service.port)))
      "dashboard" (dict "listen" (printf "0.0.0.0:%d" (int .Values.stages.dashboard.service.port))) -}}
{{- if and .Values.stages.dashboard.enabled .Values.stages.ingest.enabled -}}
{{- $_ := set $forced.dashboard "ingest" (dict "url" (printf "http://%s-ingest:%d/v1/oversight" (include "auditline.fullname" .) (int .Values.stages.ingest.service.port))) -}}
{{- end -}}
{{- $cfg := mustMergeOverwrite (deepCopy .Values.config) $forced -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* Environment of a stage: (dict "root" $ "stage" "store" "secretEnv" list) */}}
{{- define "auditline.env" -}}
- name: AUDITLINE_CONFIG
  value: /etc/auditline/auditline.yaml
- name: GOMEMLIMIT
  valueFrom:
    resourceFieldRef:
      resource: limits.memory
      divisor: "1"
{{- range .secretEnv }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "auditline.secretName" $.root }}
      key: {{ . }}
      optional: true
{{- end }}
{{- with .root.Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "auditline.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "auditline.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The pod template of a stage: (dict "root" $ "stage" "ingest") */}}
{{- define "auditline.podTemplate" -}}
{{- $root := .root -}}
{{- $st := index $root.Values.stages .stage -}}
metadata:
  labels:
    {{- include "auditline.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .stage }}
    {{- with $root.Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "auditline.config" $root | sha256sum }}
    {{- if not $root.Values.secrets.existingSecret }}
    checksum/secret: {{ toYaml $root.Values.secrets.values | sha256sum }}
    {{- end }}
    {{- with $root.Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "auditline.serviceAccountName" $root }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
  {{- with $root.Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $root.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- include "auditline.podSecurityContext" $root | nindent 4 }}
  {{- if eq .stage "archive" }}
  initContainers:
    - name: signing-key
      image: {{ $root.Values.keyInit.image }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      command: ["install", "-m", "0600", "/secret/{{ $root.Values.signingKey.key }}", "/keys/archive.key"]
      securityContext:
        {{- include "auditline.containerSecurityContext" $root | nindent 8 }}
      resources:
        requests: {cpu: 10m, memory: 16Mi}
        limits: {memory: 32Mi}
      volumeMounts:
        - {name: signing-key-secret, mountPath: /secret, readOnly: true}
        - {name: signing-key, mountPath: /keys}
  {{- end }}
  containers:
    - name: {{ .stage }}
      image: {{ include "auditline.image" $root }}
      imagePullPolicy: {{ $root.Values.image.pullPolicy }}
      args: [{{ .stage | quote }}]
      env:
        {{- include "auditline.env" (dict "root" $root "secretEnv" $st.secretEnv) | nindent 8 }}
        {{- if eq .stage "archive" }}
        - name: AUDITLINE_ARCHIVE_SIGNING_KEY_FILE
          value: /keys/archive.key
        # Static group membership: a restarted pod gets its partitions back
        # at once (kafka.instance_id).
        - name: AUDITLINE_KAFKA_INSTANCE_ID
          valueFrom:
            fieldRef: {fieldPath: metadata.name}
        {{- end }}
      ports:
        - {name: metrics, containerPort: {{ $root.Values.metrics.port }}, protocol: TCP}
        {{- if $st.service }}
        - {name: http, containerPort: {{ $st.service.port }}, protocol: TCP}
        {{- end }}
      startupProbe:
        httpGet: {path: /healthz, port: metrics}
        periodSeconds: 2
        failureThreshold: 60
      livenessProbe:
        httpGet: {path: /healthz, port: metrics}
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 6
      readinessProbe:
        httpGet: {path: /readyz, port: metrics}
        periodSeconds: 5
        timeoutSeconds: 3
        failureThreshold: 3
      resources:
        {{- toYaml $st.resources | nindent 8 }}
      securityContext:
        {{- include "auditline.containerSecurityContext" $root | nindent 8 }}
      volumeMounts:
        - {name: config, mountPath: /etc/auditline/auditline.yaml, subPath: auditline.yaml, readOnly: true}
        - {name: tmp, mountPath: /tmp}
        {{- if $root.Values.tls.secretName }}
        - {name: tls, mountPath: /etc/auditline/tls, readOnly: true}
        {{- end }}
        {{- if eq .stage "archive" }}
        - {name: signing-key, mountPath: /keys, readOnly: true}
        {{- end }}
  volumes:
    - name: config
      configMap:
        name: {{ include "auditline.fullname" $root }}
    - name: tmp
      emptyDir: {sizeLimit: 64Mi}
    {{- if $root.Values.tls.secretName }}
    - name: tls
      secret:
        secretName: {{ $root.Values.tls.secretName }}
        defaultMode: 0440
    {{- end }}
    {{- if eq .stage "archive" }}
    - name: signing-key-secret
      secret:
        secretName: {{ $root.Values.signingKey.existingSecret }}
        defaultMode: 0440
        items:
          - {key: {{ $root.Values.signingKey.key }}, path: {{ $root.Values.signingKey.key }}}
    - name: signing-key
      emptyDir: {medium: Memory, sizeLimit: 1Mi}
    {{- end }}
  {{- with $root.Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $root.Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- if $root.Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- range $root.Values.topologySpreadConstraints }}
    - {{- toYaml (merge (dict "labelSelector" (dict "matchLabels" (fromYaml (include "auditline.selector" (dict "root" $root "stage" $.stage))))) .) | nindent 6 }}
    {{- end }}
  {{- end }}
{{- end -}}
