package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodDeployment = `apiVersion: apps/v1
kind: Deployment
metadata: {name: x-ingest}
spec:
  selector: {matchLabels: {app.kubernetes.io/component: ingest}}
  template:
    metadata: {labels: {app.kubernetes.io/component: ingest}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: ingest
          image: auditline:1
          ports: [{name: metrics, containerPort: 9464}]
          readinessProbe: {httpGet: {path: /readyz, port: metrics}}
          livenessProbe: {httpGet: {path: /healthz, port: metrics}}
          resources: {requests: {memory: 1Mi}, limits: {memory: 2Mi}}
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
`

// TestDecodeStrict: unknown or duplicated fields and unknown kinds are
// refused, so a typo in a template cannot pass silently.
func TestDecodeStrict(t *testing.T) {
	if _, err := decodeStrict([]byte(goodDeployment)); err != nil {
		t.Fatalf("good deployment refused: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":    strings.Replace(goodDeployment, "  selector:", "  replica: 3\n  selector:", 1),
		"misplaced field":  strings.Replace(goodDeployment, "          image: auditline:1", "          image: auditline:1\n          probe: {}", 1),
		"duplicate field":  strings.Replace(goodDeployment, "metadata: {name: x-ingest}", "metadata: {name: x-ingest, name: y}", 1),
		"unknown kind":     "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
		"wrong type":       strings.Replace(goodDeployment, "containerPort: 9464", "containerPort: nine", 1),
		"second doc wrong": goodDeployment + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {portz: []}\n",
	} {
		if _, err := decodeStrict([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCheckObjects: the chart's promises are enforced.
func TestCheckObjects(t *testing.T) {
	run := func(doc string) []string {
		objs, err := decodeStrict([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		r := &report{}
		checkObjects(r, "test", objs, configChecker{bin: "/bin/false"})
		return r.problems
	}
	if p := run(goodDeployment); len(p) != 0 {
		t.Fatalf("good deployment: %v", p)
	}
	for name, c := range map[string]struct{ doc, want string }{
		"no readiness":   {strings.Replace(goodDeployment, "readinessProbe: {httpGet: {path: /readyz, port: metrics}}", "readinessProbe: {httpGet: {path: /, port: metrics}}", 1), "readinessProbe"},
		"root":           {strings.Replace(goodDeployment, "runAsUser: 65532", "runAsUser: 0", 1), "non-root"},
		"writable root":  {strings.Replace(goodDeployment, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", 1), "readOnlyRootFilesystem"},
		"capability":     {strings.Replace(goodDeployment, "drop: [ALL]", "drop: [ALL], add: [NET_ADMIN]", 1), "capabilities"},
		"literal secret": {strings.Replace(goodDeployment, "          image: auditline:1", "          image: auditline:1\n          env: [{name: CLICKHOUSE_PASSWORD, value: hunter2}]", 1), "literal"},
		"latest":         {strings.Replace(goodDeployment, "image: auditline:1", "image: auditline:latest", 1), "pinned"},
		"token mounted":  {strings.Replace(goodDeployment, "automountServiceAccountToken: false", "automountServiceAccountToken: true", 1), "automount"},
		"missing cm":     {strings.Replace(goodDeployment, "      containers:", "      volumes: [{name: c, configMap: {name: nope}}]\n      containers:", 1), "not rendered"},
		"bad selector":   {strings.Replace(goodDeployment, "selector: {matchLabels: {app.kubernetes.io/component: ingest}}", "selector: {matchLabels: {app.kubernetes.io/component: other}}", 1), "selector"},
		"service port":   {goodDeployment + "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {selector: {app.kubernetes.io/component: ingest}, ports: [{port: 80, targetPort: http}]}\n", "targetPort"},
	} {
		p := strings.Join(run(c.doc), "\n")
		if !strings.Contains(p, c.want) {
			t.Errorf("%s: problems %q, want one about %q", name, p, c.want)
		}
	}
}

func TestLintDockerfile(t *testing.T) {
	good := "FROM golang:1.26 AS build\nRUN true\nFROM scratch\nCOPY --from=build /x /x\nUSER 65532:65532\nENTRYPOINT [\"/x\"]\n"
	if p := lintDockerfile([]byte(good)); len(p) != 0 {
		t.Fatalf("good Dockerfile: %v", p)
	}
	for name, c := range map[string]struct{ df, want string }{
		"root":       {strings.Replace(good, "USER 65532:65532", "USER root", 1), "USER"},
		"no user":    {strings.Replace(good, "USER 65532:65532\n", "", 1), "USER"},
		"latest":     {strings.Replace(good, "FROM scratch", "FROM alpine:latest", 1), "pinned"},
		"untagged":   {strings.Replace(good, "FROM scratch", "FROM alpine", 1), "pinned"},
		"lint":       {strings.Replace(good, "FROM golang:1.26 AS build", "FROM golang:1.26 as build", 1), "lint"},
		"shell form": {strings.Replace(good, "ENTRYPOINT [\"/x\"]", "ENTRYPOINT /x", 1), "lint"},
		"bad from":   {strings.Replace(good, "COPY --from=build", "COPY --from=builder", 1), "no earlier stage"},
	} {
		p := strings.Join(lintDockerfile([]byte(c.df)), "\n")
		if !strings.Contains(p, c.want) {
			t.Errorf("%s: problems %q, want one about %q", name, p, c.want)
		}
	}
}

// TestComposeSchema: a key the Compose specification does not know fails.
func TestComposeSchema(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile("../compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(src), "    restart: unless-stopped\n    environment:\n      CLUSTER_ID", "    restart: unless-stopped\n    restart_policy: always\n    environment:\n      CLUSTER_ID", 1)
	if bad == string(src) {
		t.Fatal("replacement did not apply")
	}
	for name, content := range map[string]string{"compose.yaml": bad, "env.example": "CLICKHOUSE_PASSWORD=x\nDASHBOARD_CLICKHOUSE_PASSWORD=x\nMINIO_ROOT_PASSWORD=x\nLITELLM_TOKEN=x\nOVERSIGHT_TOKEN=x\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &report{}
	checkCompose(r, dir, pins{"KAFKA_VERSION": "4.3.1", "MINIO_VERSION": "v0"}, configChecker{bin: "/bin/false"})
	if p := strings.Join(r.problems, "\n"); !strings.Contains(p, "restart_policy") {
		t.Errorf("unknown compose key not reported: %q", p)
	}
	r = &report{}
	literalSecrets(r, map[string]any{"services": map[string]any{"x": map[string]any{"environment": map[string]any{"DB_PASSWORD": "hunter2", "OK_TOKEN": "${T}"}}}}, "")
	if len(r.problems) != 1 || !strings.Contains(r.problems[0], "DB_PASSWORD") {
		t.Errorf("literal secrets: %v", r.problems)
	}
}

func TestCheckEnv(t *testing.T) {
	known := envNames(map[string]any{"kafka": map[string]any{"instance_id": "", "brokers": []any{"x"}}, "archive": map[string]any{"s3": map[string]any{"secret_key": ""}}})
	r := &report{}
	checkEnv(r, "t", []string{"AUDITLINE_KAFKA_INSTANCE_ID", "AUDITLINE_KAFKA_BROKERS", "AUDITLINE_ARCHIVE_S3_SECRET_KEY", "AUDITLINE_CONFIG", "TZ"}, known)
	if len(r.problems) != 0 {
		t.Fatalf("known names refused: %v", r.problems)
	}
	checkEnv(r, "t", []string{"AUDITLINE_ARCHIVE_INSTANCE_ID"}, known)
	if len(r.problems) != 1 {
		t.Fatalf("renamed key not caught: %v", r.problems)
	}
}
