package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// kubeVersion is the Kubernetes version the chart is rendered for (the API
// types above are from the same release line, k8s.io/api v0.37).
const kubeVersion = "1.37.0"

// stages are the workloads the chart must run, one each.
var stages = []string{"ingest", "enrich", "store", "archive", "dashboard"}

// scheme knows every kind the chart may render. Anything else is a failure:
// an unknown kind cannot be checked.
func newScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

// decodeStrict decodes every document of a multi-document YAML stream with
// the API types; unknown and duplicated fields are errors.
func decodeStrict(stream []byte) ([]runtime.Object, error) {
	dec := serializer.NewCodecFactory(newScheme(), serializer.EnableStrict).UniversalDeserializer()
	rd := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var out []runtime.Object
	var errs []error
	for i := 0; ; i++ {
		doc, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		src := sourceOf(doc)
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := dec.Decode(doc, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d (%s): %w", i, src, err))
			continue
		}
		if gvk.Kind == "" {
			errs = append(errs, fmt.Errorf("document %d (%s): no kind", i, src))
			continue
		}
		out = append(out, obj)
	}
	return out, errors.Join(errs...)
}

func sourceOf(doc []byte) string {
	for _, l := range strings.Split(string(doc), "\n") {
		if s, ok := strings.CutPrefix(l, "# Source: "); ok {
			return s
		}
	}
	return "?"
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes()
}

// checkHelm lints the chart and renders it with the default values and with
// each testdata/values-*.yaml, checking every rendered object.
func checkHelm(r *report, helm, chart, testdata string, cfg configChecker) {
	if out, err := exec.Command(helm, "lint", "--strict", chart).CombinedOutput(); err != nil {
		r.fail("helm lint --strict: %v\n%s", err, out)
	} else {
		r.note("helm lint --strict %s", filepath.Base(chart))
	}
	sets, _ := filepath.Glob(filepath.Join(testdata, "values-*.yaml"))
	sort.Strings(sets)
	for _, values := range append([]string{""}, sets...) {
		name := "default values"
		args := []string{"template", "audit", chart, "--namespace", "audit", "--kube-version", kubeVersion}
		if values != "" {
			name = filepath.Base(values)
			args = append(args, "--values", values)
		}
		out, err := exec.Command(helm, args...).Output()
		if err != nil {
			var stderr []byte
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				stderr = ee.Stderr
			}
			r.fail("helm template (%s): %v\n%s", name, err, stderr)
			continue
		}
		objs, err := decodeStrict(out)
		if err != nil {
			r.fail("helm template (%s): strict decode: %v", name, err)
			continue
		}
		n := len(r.problems)
		checkObjects(r, name, objs, cfg)
		if len(r.problems) == n {
			r.note("helm template (%s): %d objects decode strictly and pass the checks", name, len(objs))
		}
	}
	// Values the schema must refuse (values.schema.json).
	bad, _ := filepath.Glob(filepath.Join(testdata, "bad-values-*.yaml"))
	for _, values := range bad {
		if out, err := exec.Command(helm, "template", "audit", chart, "--kube-version", kubeVersion, "--values", values).CombinedOutput(); err == nil {
			r.fail("helm template accepted %s (values.schema.json should refuse it)", filepath.Base(values))
		} else if !strings.Contains(string(out), "schema") {
			r.fail("helm template refused %s, but not by the schema:\n%s", filepath.Base(values), out)
		}
	}
	if len(bad) > 0 {
		r.note("values.schema.json refuses %d bad value sets", len(bad))
	}
}

// checkObjects checks what the chart promises of the rendered objects.
func checkObjects(r *report, set string, objs []runtime.Object, cfg configChecker) {
	fail := func(format string, a ...any) { r.fail("helm (%s): "+format, append([]any{set}, a...)...) }
	configMaps := map[string]*corev1.ConfigMap{}
	secrets := map[string]*corev1.Secret{}
	type workload struct {
		kind, name string
		labels     map[string]string
		pod        corev1.PodTemplateSpec
	}
	var workloads []workload
	var services []*corev1.Service
	var pdbs []*policyv1.PodDisruptionBudget
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.ConfigMap:
			configMaps[v.Name] = v
		case *corev1.Secret:
			secrets[v.Name] = v
		case *appsv1.Deployment:
			if !selects(v.Spec.Selector.MatchLabels, v.Spec.Template.Labels) {
				fail("Deployment %s: selector does not match its pod labels", v.Name)
			}
			workloads = append(workloads, workload{"Deployment", v.Name, v.Spec.Template.Labels, v.Spec.Template})
		case *appsv1.StatefulSet:
			if !selects(v.Spec.Selector.MatchLabels, v.Spec.Template.Labels) {
				fail("StatefulSet %s: selector does not match its pod labels", v.Name)
			}
			workloads = append(workloads, workload{"StatefulSet", v.Name, v.Spec.Template.Labels, v.Spec.Template})
		case *batchv1.Job:
			workloads = append(workloads, workload{"Job", v.Name, v.Spec.Template.Labels, v.Spec.Template})
		case *corev1.Service:
			services = append(services, v)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, v)
		}
	}
	seen := map[string]int{}
	for _, w := range workloads {
		comp := w.labels["app.kubernetes.io/component"]
		if w.kind != "Job" {
			seen[comp]++
		}
		checkPod(r, fmt.Sprintf("helm (%s): %s %s", set, w.kind, w.name), w.kind, w.pod, configMaps, secrets, cfg)
	}
	for _, s := range stages {
		if seen[s] > 1 {
			fail("stage %s runs in %d workloads, want one", s, seen[s])
		}
	}
	if set == "default values" {
		for _, s := range stages {
			if seen[s] != 1 {
				fail("stage %s has no workload", s)
			}
		}
	}
	for _, svc := range services {
		var target *corev1.PodTemplateSpec
		for i := range workloads {
			if workloads[i].kind != "Job" && selects(svc.Spec.Selector, workloads[i].labels) {
				target = &workloads[i].pod
			}
		}
		if target == nil {
			fail("Service %s selects no workload", svc.Name)
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.StrVal != "" && !hasPort(*target, p.TargetPort.StrVal) {
				fail("Service %s: targetPort %s is not a named port of its pods", svc.Name, p.TargetPort.StrVal)
			}
		}
	}
	for _, p := range pdbs {
		found := false
		for _, w := range workloads {
			if w.kind != "Job" && selects(p.Spec.Selector.MatchLabels, w.labels) {
				found = true
			}
		}
		if !found {
			fail("PodDisruptionBudget %s selects no workload", p.Name)
		}
	}
}

func selects(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hasPort(pod corev1.PodTemplateSpec, name string) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == name {
				return true
			}
		}
	}
	return false
}

// checkPod: security, probes, metrics, and that every reference resolves.
func checkPod(r *report, what, kind string, pod corev1.PodTemplateSpec, cms map[string]*corev1.ConfigMap, secrets map[string]*corev1.Secret, cfg configChecker) {
	fail := func(format string, a ...any) { r.fail(what+": "+format, a...) }
	ps := pod.Spec
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		fail("automountServiceAccountToken must be false (auditline never calls the API server)")
	}
	sc := ps.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
		fail("pod must run as a numeric non-root user (runAsNonRoot, runAsUser)")
	}
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod seccompProfile must be RuntimeDefault")
	}
	volumes := map[string]corev1.Volume{}
	var effective map[string]any
	var content []byte
	for _, v := range ps.Volumes {
		volumes[v.Name] = v
		switch {
		case v.ConfigMap != nil:
			cm := cms[v.ConfigMap.Name]
			if cm == nil {
				fail("volume %s: ConfigMap %s is not rendered", v.Name, v.ConfigMap.Name)
				continue
			}
			if c, ok := cm.Data["auditline.yaml"]; ok {
				content = []byte(c)
				effective = cfg.check(r, what+": ConfigMap "+cm.Name+" auditline.yaml", content)
			}
		case v.Secret != nil:
			if s := secrets[v.Secret.SecretName]; s == nil && !strings.Contains(v.Name, "signing-key") && v.Name != "tls" {
				fail("volume %s: Secret %s is not rendered", v.Name, v.Secret.SecretName)
			}
		}
	}
	containers := append(append([]corev1.Container{}, ps.InitContainers...), ps.Containers...)
	if effective != nil {
		known := envNames(effective)
		for _, c := range containers {
			var names []string
			for _, e := range c.Env {
				names = append(names, e.Name)
			}
			checkEnv(r, what+": container "+c.Name, names, known)
		}
	}
	for _, c := range containers {
		cf := func(format string, a ...any) { fail("container %s: "+format, append([]any{c.Name}, a...)...) }
		csc := c.SecurityContext
		if csc == nil || csc.AllowPrivilegeEscalation == nil || *csc.AllowPrivilegeEscalation {
			cf("allowPrivilegeEscalation must be false")
		}
		if csc == nil || csc.ReadOnlyRootFilesystem == nil || !*csc.ReadOnlyRootFilesystem {
			cf("readOnlyRootFilesystem must be true")
		}
		if csc == nil || csc.Capabilities == nil || len(csc.Capabilities.Drop) != 1 || csc.Capabilities.Drop[0] != "ALL" || len(csc.Capabilities.Add) > 0 {
			cf("capabilities must drop ALL and add none")
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Memory().IsZero() {
			cf("memory request and limit are required")
		}
		if strings.HasSuffix(c.Image, ":latest") || !strings.ContainsAny(c.Image, ":@") {
			cf("image %q is not pinned (tag or digest)", c.Image)
		}
		for _, m := range c.VolumeMounts {
			if _, ok := volumes[m.Name]; !ok {
				cf("volumeMount %s names no volume", m.Name)
			}
		}
		for _, e := range c.Env {
			low := strings.ToLower(e.Name)
			if e.Value != "" && (strings.Contains(low, "password") || strings.Contains(low, "secret") || strings.Contains(low, "token")) {
				cf("env %s has a literal value; secrets come from a Secret", e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				if s := secrets[ref.Name]; s != nil {
					if _, ok := s.StringData[ref.Key]; !ok {
						if _, ok := s.Data[ref.Key]; !ok && (ref.Optional == nil || !*ref.Optional) {
							cf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
						}
					}
				}
			}
		}
	}
	if effective != nil {
		for _, c := range ps.Containers {
			p := process{what: what + ": container " + c.Name, stage: pod.Labels["app.kubernetes.io/component"],
				env: map[string]string{}, secretEnv: map[string]bool{}}
			for _, e := range c.Env {
				switch {
				case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
					p.secretEnv[e.Name] = true
				case e.ValueFrom == nil:
					p.env[e.Name] = e.Value
				}
			}
			for _, m := range c.VolumeMounts {
				if v, ok := volumes[m.Name]; ok && v.Secret != nil {
					p.mounts = append(p.mounts, m.MountPath)
				}
			}
			checkTransport(r, p, effective, content, cfg)
		}
	}
	if kind == "Job" {
		return
	}
	for _, c := range ps.Containers {
		cf := func(format string, a ...any) { fail("container %s: "+format, append([]any{c.Name}, a...)...) }
		if !probe(c.ReadinessProbe, "/readyz") {
			cf("readinessProbe must GET /readyz on a named port")
		}
		if !probe(c.LivenessProbe, "/healthz") {
			cf("livenessProbe must GET /healthz on a named port")
		}
		if !hasPort(corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}, "metrics") {
			cf("no port named metrics")
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && p.HTTPGet.Port.StrVal != "" && !hasPort(corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}, p.HTTPGet.Port.StrVal) {
				cf("probe port %s is not a named port", p.HTTPGet.Port.StrVal)
			}
		}
	}
}

func probe(p *corev1.Probe, path string) bool {
	return p != nil && p.HTTPGet != nil && p.HTTPGet.Path == path && p.HTTPGet.Port.StrVal != ""
}

// readFile is os.ReadFile with the path in the error.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}
