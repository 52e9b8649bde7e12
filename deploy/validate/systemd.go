package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// checkSystemd runs `systemd-analyze verify` on every unit (with ExecStart
// pointing at the binary under test, since /usr/local/bin/auditline is not
// installed on a CI machine) and rates each service with
// `systemd-analyze security --offline`. Without systemd-analyze the check
// is reported as skipped (the units are still parsed for their config path).
func checkSystemd(r *report, dir, bin string, maxExposure float64, cfg configChecker) {
	services, _ := filepath.Glob(filepath.Join(dir, "auditline*.service"))
	targets, _ := filepath.Glob(filepath.Join(dir, "auditline*.target"))
	units := append(services, targets...)
	if len(units) == 0 {
		r.fail("systemd: no units in %s", dir)
		return
	}
	bin, err := filepath.Abs(bin)
	if err != nil {
		r.fail("systemd: %v", err)
		return
	}
	tmp, err := os.MkdirTemp("", "auditline-units-")
	if err != nil {
		r.fail("systemd: %v", err)
		return
	}
	defer os.RemoveAll(tmp)
	var paths, envs []string
	for _, u := range units {
		b, err := readFile(u)
		if err != nil {
			r.fail("systemd: %v", err)
			continue
		}
		s := string(b)
		for _, l := range strings.Split(s, "\n") {
			if v, ok := strings.CutPrefix(l, "Environment="); ok {
				name, _, _ := strings.Cut(v, "=")
				envs = append(envs, name)
			}
		}
		if strings.HasSuffix(u, ".service") && !strings.Contains(s, "ExecStart=/usr/local/bin/auditline ") {
			r.fail("systemd: %s does not run /usr/local/bin/auditline", filepath.Base(u))
		}
		p := filepath.Join(tmp, filepath.Base(u))
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(s, "/usr/local/bin/auditline", bin)), 0o644); err != nil {
			r.fail("systemd: %v", err)
			continue
		}
		paths = append(paths, p)
	}
	// The TLS drop-in (auditline-tls.conf), installed for every stage:
	// verified with each unit, its variables must name configuration keys,
	// it must hold no secret, and with it the stages' transport settings
	// must be valid (checkTransport).
	dropIn, dropErr := readFile(filepath.Join(dir, "auditline-tls.conf"))
	dropEnv := map[string]string{}
	var creds []string // LoadCredential names
	if dropErr != nil {
		r.fail("systemd: %v", dropErr)
	} else {
		for _, l := range strings.Split(string(dropIn), "\n") {
			if v, ok := strings.CutPrefix(l, "LoadCredential="); ok {
				name, _, _ := strings.Cut(v, ":")
				creds = append(creds, name)
			}
			if v, ok := strings.CutPrefix(l, "Environment="); ok {
				name, val, _ := strings.Cut(v, "=")
				envs = append(envs, name)
				dropEnv[name] = val
				low := strings.ToLower(name)
				if strings.Contains(low, "password") || strings.Contains(low, "secret") || strings.Contains(low, "token") {
					r.fail("systemd: auditline-tls.conf sets %s in clear; secrets go to the EnvironmentFile", name)
				}
			}
		}
		for _, p := range paths {
			if !strings.HasSuffix(p, ".service") || strings.HasSuffix(p, "witness.service") {
				continue
			}
			d := p + ".d"
			if err := os.MkdirAll(d, 0o755); err == nil {
				_ = os.WriteFile(filepath.Join(d, "tls.conf"), dropIn, 0o644)
			}
		}
	}
	if b, err := readFile(filepath.Join(dir, "auditline.yaml")); err == nil {
		if eff := cfg.check(r, "systemd: auditline.yaml", b); eff != nil {
			checkEnv(r, "systemd units", envs, envNames(eff))
			// The dashboards read as a read-only user, never the store's.
			du, _ := lookup(eff, "dashboard.clickhouse.username").(string)
			su, _ := lookup(eff, "store.clickhouse.username").(string)
			if du == "" || du == su {
				r.fail("systemd: auditline.yaml: dashboard.clickhouse.username %q: give the dashboard its own read-only ClickHouse user, not the store's (%q)", du, su)
			}
		}
		if dropErr == nil {
			for _, stage := range []string{"migrate", "ingest", "enrich", "store", "archive", "dashboard"} {
				dir := "/run/credentials/auditline-" + stage + ".service"
				env := map[string]string{}
				for k, v := range dropEnv {
					env[k] = strings.ReplaceAll(v, "%d", dir)
				}
				var mounts []string // the credentials systemd loads: only those files exist
				for _, c := range creds {
					mounts = append(mounts, dir+"/"+c)
				}
				eff, err := cfg.effectiveEnv(b, env)
				if err != nil {
					r.fail("systemd: auditline.yaml with auditline-tls.conf (%s): %v", stage, err)
					continue
				}
				// The EnvironmentFile (/etc/auditline/auditline.env) holds the passwords.
				secret := map[string]bool{"AUDITLINE_KAFKA_SASL_PASSWORD": true}
				switch stage {
				case "store", "migrate":
					secret["AUDITLINE_STORE_CLICKHOUSE_PASSWORD"] = true
				case "dashboard":
					secret["AUDITLINE_DASHBOARD_CLICKHOUSE_PASSWORD"] = true
				}
				checkTransport(r, process{what: "systemd: auditline-" + stage + ".service + auditline-tls.conf", stage: stage,
					env: env, secretEnv: secret, mounts: mounts}, eff, b, cfg)
			}
		}
	} else {
		r.fail("systemd: %v", err)
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		r.note("systemd: systemd-analyze not installed; units not verified")
		return
	}
	if out, err := exec.Command(sa, append([]string{"verify"}, paths...)...).CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		r.fail("systemd-analyze verify: %v\n%s", err, out)
	} else {
		r.note("systemd-analyze verify: %d units", len(paths))
	}
	exposure := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	worst, rated := 0.0, 0
	for _, p := range paths {
		if !strings.HasSuffix(p, ".service") {
			continue
		}
		out, _ := exec.Command(sa, "security", "--offline=true", "--no-pager", p).CombinedOutput()
		m := exposure.FindSubmatch(out)
		if m == nil {
			r.fail("systemd-analyze security %s: no rating\n%s", filepath.Base(p), out)
			continue
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		worst, rated = max(worst, v), rated+1
		if v > maxExposure {
			r.fail("systemd-analyze security: %s exposure %.1f, want <= %.1f", filepath.Base(p), v, maxExposure)
		}
	}
	r.note("systemd-analyze security --offline: %d services rated, worst exposure %.1f (limit %.1f)", rated, worst, maxExposure)
}
