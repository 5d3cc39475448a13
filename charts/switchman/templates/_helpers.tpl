{{/*
Names, labels and the operator's mode, shared by every template of the chart.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "switchman.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The resource-name prefix: fullnameOverride, RELEASE, or RELEASE-NAME (63 characters). */}}
{{- define "switchman.fullname" -}}
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

{{/* The operator's Deployment, ServiceAccount, Roles, PDB and NetworkPolicy name. */}}
{{- define "switchman.operatorName" -}}
{{- printf "%s-operator" (include "switchman.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/* chart-version, as the helm.sh/chart label wants it. */}}
{{- define "switchman.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object of the chart carries. */}}
{{- define "switchman.labels" -}}
helm.sh/chart: {{ include "switchman.chart" . }}
app.kubernetes.io/name: {{ include "switchman.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: switchman
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The operator's labels: the common ones plus its component. */}}
{{- define "switchman.operatorLabels" -}}
{{ include "switchman.labels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* What the operator's Deployment selects its pods by (immutable: keep it small). */}}
{{- define "switchman.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchman.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "switchman.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchman.operatorName" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name an existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace the operator serves in namespaced mode (watchNamespace or the release's). */}}
{{- define "switchman.watchNamespace" -}}
{{- default .Release.Namespace .Values.watchNamespace }}
{{- end }}

{{/* Where the operator's custom resources (examples) and peering object live. */}}
{{- define "switchman.resourceNamespace" -}}
{{- if .Values.rbac.namespaced }}
{{- include "switchman.watchNamespace" . }}
{{- else }}
{{- .Release.Namespace }}
{{- end }}
{{- end }}

{{/* "true" when replicas > 1: kopf peering, so that only one replica acts. */}}
{{- define "switchman.peering" -}}
{{- if gt (int .Values.operator.replicas) 1 }}true{{ end }}
{{- end }}

{{/* The operator image: repository@digest, or repository:tag (tag defaults to appVersion). */}}
{{- define "switchman.operatorImage" -}}
{{- $image := .Values.operator.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/*
The operator's PolicyRules: files/rbac-rules.yaml (generated from switchman.operator.rbac) as
switchman.operator.rbac.rules(clusterwide=not rbac.namespaced, peering=replicas > 1) selects them.
*/}}
{{- define "switchman.rbacRules" -}}
{{- $clusterwide := not .Values.rbac.namespaced }}
{{- $peering := eq (include "switchman.peering" .) "true" }}
{{- range (.Files.Get "files/rbac-rules.yaml" | fromYaml).rules }}
{{- if or (not .peering) (and $peering (eq .clusterScoped $clusterwide)) }}
# {{ .why }}
{{ list (dict "apiGroups" .apiGroups "resources" .resources "verbs" .verbs) | toYaml }}
{{- end }}
{{- end }}
{{- end }}
