package main

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"sigs.k8s.io/yaml"
)

// checkCompose loads deploy/compose/compose.yaml as `docker compose` would
// (with env.example as the .env), which validates it against the Compose
// specification, then checks the auditline services.
func checkCompose(r *report, dir string, p pins, cfg configChecker) {
	path := filepath.Join(dir, "compose.yaml")
	fail := func(format string, a ...any) { r.fail("compose: "+format, a...) }
	opts, err := cli.NewProjectOptions([]string{path},
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(filepath.Join(dir, "env.example")),
		cli.WithDotEnv,
		cli.WithName("auditline"),
		cli.WithProfiles([]string{"dashboard"}),
	)
	if err != nil {
		fail("%v", err)
		return
	}
	proj, err := opts.LoadProject(context.Background())
	if err != nil {
		fail("load %s: %v", path, err)
		return
	}
	// Secrets only by interpolation from .env, never literal.
	raw, err := readFile(path)
	if err != nil {
		fail("%v", err)
		return
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		fail("%v", err)
		return
	}
	literalSecrets(r, doc, "")

	auditlineServices := 0
	for name, s := range proj.Services {
		sf := func(format string, a ...any) { fail("service %s: "+format, append([]any{name}, a...)...) }
		if strings.HasSuffix(s.Image, ":latest") || !strings.Contains(s.Image, ":") {
			sf("image %q is not pinned", s.Image)
		}
		if name == "kafka" && s.Image != "apache/kafka:"+p["KAFKA_VERSION"] {
			sf("image %s, want apache/kafka:%s (deploy/local/lib.sh KAFKA_VERSION)", s.Image, p["KAFKA_VERSION"])
		}
		if !strings.HasPrefix(s.Image, "auditline:") {
			continue
		}
		auditlineServices++
		if s.User != "65532:65532" {
			sf("user %q, want 65532:65532", s.User)
		}
		if !s.ReadOnly {
			sf("read_only must be true")
		}
		if len(s.CapDrop) != 1 || s.CapDrop[0] != "ALL" || len(s.CapAdd) > 0 {
			sf("cap_drop must be [ALL] and cap_add empty")
		}
		if !contains(s.SecurityOpt, "no-new-privileges:true") {
			sf("security_opt must include no-new-privileges:true")
		}
		if len(s.Command) == 0 {
			sf("no command (the stage to run)")
		}
		for _, c := range s.Configs {
			cf, ok := proj.Configs[c.Source]
			if !ok {
				sf("config %s is not defined", c.Source)
				continue
			}
			content, err := readFile(cf.File)
			if err != nil {
				sf("%v", err)
				continue
			}
			if eff := cfg.check(r, "compose: "+filepath.Base(cf.File), content); eff != nil {
				var names []string
				for k := range s.Environment {
					names = append(names, k)
				}
				checkEnv(r, "compose: service "+name, names, envNames(eff))
				// Secrets are interpolated from .env (literalSecrets), TLS
				// files are compose secrets.
				p := process{what: "compose: service " + name, stage: name, env: map[string]string{}, secretEnv: map[string]bool{}}
				for k, v := range s.Environment {
					low := strings.ToLower(k)
					if strings.Contains(low, "password") || strings.Contains(low, "secret") || strings.Contains(low, "token") {
						p.secretEnv[k] = true
					} else if v != nil {
						p.env[k] = *v
					}
				}
				for _, sec := range s.Secrets {
					target := sec.Target
					if target == "" {
						target = sec.Source
					}
					if !strings.HasPrefix(target, "/") {
						target = "/run/secrets/" + target
					}
					p.mounts = append(p.mounts, target)
				}
				checkTransport(r, p, eff, content, cfg)
			}
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				sf("port %d is published on %q; publish on 127.0.0.1 (put TLS in front for more)", port.Target, port.HostIP)
			}
		}
	}
	if auditlineServices < 6 {
		fail("%d auditline services, want migrate and the five stages", auditlineServices)
	}
	mdf, err := readFile(filepath.Join(dir, "..", "container", "minio.Dockerfile"))
	if err == nil && !strings.Contains(string(mdf), "ARG MINIO_VERSION="+p["MINIO_VERSION"]+"\n") {
		fail("deploy/container/minio.Dockerfile does not pin MINIO_VERSION=%s (deploy/local/lib.sh)", p["MINIO_VERSION"])
	}
	if len(r.problems) == 0 || !strings.HasPrefix(r.problems[len(r.problems)-1], "compose") {
		r.note("compose: %s valid against the Compose specification; %d services (%d auditline)", filepath.Base(path), len(proj.Services), auditlineServices)
	}
	checkComposeTLS(r, dir, cfg)
}

// checkComposeTLS loads compose.tls.yaml over compose.yaml, as
// `docker compose -f compose.yaml -f compose.tls.yaml` would, and checks each
// auditline service's transport security with its environment overrides.
func checkComposeTLS(r *report, dir string, cfg configChecker) {
	fail := func(format string, a ...any) { r.fail("compose (compose.tls.yaml): "+format, a...) }
	files := []string{filepath.Join(dir, "compose.yaml"), filepath.Join(dir, "compose.tls.yaml")}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(dir),
		cli.WithEnvFiles(filepath.Join(dir, "env.example")),
		cli.WithDotEnv,
		cli.WithName("auditline"),
		cli.WithProfiles([]string{"dashboard"}),
	)
	if err != nil {
		fail("%v", err)
		return
	}
	proj, err := opts.LoadProject(context.Background())
	if err != nil {
		fail("load: %v", err)
		return
	}
	raw, err := readFile(files[1])
	if err != nil {
		fail("%v", err)
		return
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		fail("%v", err)
		return
	}
	literalSecrets(r, doc, "")
	n := len(r.problems)
	checked := 0
	for name, s := range proj.Services {
		if !strings.HasPrefix(s.Image, "auditline:") {
			continue
		}
		for _, c := range s.Configs {
			cf, ok := proj.Configs[c.Source]
			if !ok {
				continue
			}
			content, err := readFile(cf.File)
			if err != nil {
				fail("%v", err)
				continue
			}
			p := process{what: "compose (compose.tls.yaml): service " + name, stage: name, env: map[string]string{}, secretEnv: map[string]bool{}}
			for k, v := range s.Environment {
				low := strings.ToLower(k)
				if strings.Contains(low, "password") || strings.Contains(low, "secret") || strings.Contains(low, "token") {
					p.secretEnv[k] = true
				} else if v != nil && strings.HasPrefix(k, "AUDITLINE_") && k != "AUDITLINE_CONFIG" {
					p.env[k] = *v
				}
			}
			for _, sec := range s.Secrets {
				if _, ok := proj.Secrets[sec.Source]; !ok {
					fail("service %s: secret %s is not defined", name, sec.Source)
				}
				target := sec.Target
				if !strings.HasPrefix(target, "/") {
					target = "/run/secrets/" + cmp.Or(target, sec.Source)
				}
				p.mounts = append(p.mounts, target)
			}
			eff, err := cfg.effectiveEnv(content, p.env)
			if err != nil {
				fail("service %s: %v", name, err)
				continue
			}
			if b, _ := lookup(eff, "kafka.tls.enabled").(bool); !b {
				fail("service %s: kafka.tls.enabled is not true with compose.tls.yaml", name)
			}
			checkTransport(r, p, eff, content, cfg)
			checked++
		}
	}
	if len(r.problems) == n {
		r.note("compose: compose.tls.yaml over compose.yaml: %d auditline services get TLS files from compose secrets and passwords from .env; transport settings valid", checked)
	}
}

// literalSecrets reports environment entries named like secrets whose value
// is not a ${...} interpolation.
func literalSecrets(r *report, v any, path string) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if strings.HasSuffix(path, ".environment") {
				low := strings.ToLower(k)
				s, _ := c.(string)
				if (strings.Contains(low, "password") || strings.Contains(low, "secret") || strings.Contains(low, "token")) &&
					s != "" && !strings.HasPrefix(s, "${") {
					r.fail("compose: %s.%s has a literal value; interpolate it from .env", path, k)
				}
			}
			literalSecrets(r, c, path+"."+k)
		}
	case []any:
		for i, c := range t {
			literalSecrets(r, c, fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
