//go:build cluster

package cluster

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/auditline/auditline/deploy/testenv"
	"github.com/auditline/auditline/enrich/record"
	"github.com/auditline/auditline/ingest/auth"
	"github.com/auditline/auditline/ingest/raw"
	"github.com/auditline/auditline/ingest/topic"
	"github.com/auditline/auditline/internal/app"
	"github.com/auditline/auditline/internal/stacktest"
	"github.com/auditline/auditline/internal/tlsclient"
	"github.com/auditline/auditline/sinks/archive/bucket"
	"github.com/auditline/auditline/store"
)

const token = "cluster-suite-litellm-token"

// profile is the running cluster profile (scripts/cluster.sh start writes
// .data/cluster/env; scripts/cluster-suite.sh sources it).
type profile struct {
	kafka      []string // PLAINTEXT listeners (the harness's own use)
	clickhouse []string // native ports of clickhouse-1..4 (shard 01: 1, 2; shard 02: 3, 4), user default
	name       string   // the ClickHouse cluster
	s3         testenv.S3Endpoint
	data       string // CLUSTER_DATA: pid files under run/
	// What the stages use: SASL_SSL (SCRAM-SHA-512) listeners, ClickHouse's
	// TLS ports with a password, HTTPS S3; every certificate from ca.
	kafkaSecure            []string
	kafkaUser, kafkaPass   string
	clickhouseSecure       []string
	clickhouseUser, chPass string
	ca                     string
}

func loadProfile(t *testing.T) profile {
	t.Helper()
	get := func(k string) string {
		v := os.Getenv(k)
		if v == "" {
			t.Fatalf("%s is not set: run scripts/cluster-suite.sh (or scripts/cluster.sh start && source .data/cluster/env)", k)
		}
		return v
	}
	p := profile{kafka: strings.Split(get("AUDITLINE_CLUSTER_KAFKA"), ","),
		clickhouse: strings.Split(get("AUDITLINE_CLUSTER_CLICKHOUSE"), ","),
		name:       get("AUDITLINE_CLUSTER_CLICKHOUSE_NAME"), data: get("AUDITLINE_CLUSTER_DATA"),
		kafkaSecure: strings.Split(get("AUDITLINE_CLUSTER_KAFKA_SASL_SSL"), ","), kafkaUser: get("AUDITLINE_CLUSTER_KAFKA_USER"),
		kafkaPass: get("AUDITLINE_CLUSTER_KAFKA_PASSWORD"), clickhouseSecure: strings.Split(get("AUDITLINE_CLUSTER_CLICKHOUSE_SECURE"), ","),
		clickhouseUser: get("AUDITLINE_CLUSTER_CLICKHOUSE_USER"), chPass: get("AUDITLINE_CLUSTER_CLICKHOUSE_PASSWORD"), ca: get("AUDITLINE_CLUSTER_CA")}
	u, err := url.Parse(get("AUDITLINE_CLUSTER_S3"))
	if err != nil || u.User == nil {
		t.Fatalf("AUDITLINE_CLUSTER_S3: want http://ACCESS:SECRET@host:port")
	}
	secret, _ := u.User.Password()
	p.s3 = testenv.S3Endpoint{Endpoint: u.Host, Secure: u.Scheme == "https", AccessKey: u.User.Username(), SecretKey: secret,
		Bucket: get("AUDITLINE_CLUSTER_S3_BUCKET")}
	return p
}

func (p profile) servers() stacktest.Servers {
	return stacktest.Servers{Kafka: p.kafka, ClickHouse: p.clickhouse[0], S3: p.s3}
}

// kill SIGKILLs a node of the profile (by its pid file).
func (p profile) kill(t *testing.T, node string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(p.data, "run", node+".pid"))
	if err != nil {
		t.Fatalf("%s: %v", node, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s pid: %v", node, err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %s: %v", node, err)
	}
	for syscall.Kill(pid, 0) == nil {
		time.Sleep(100 * time.Millisecond)
	}
}

// start starts a node of the profile again and waits until it is healthy.
func (p profile) start(node string) error {
	cmd := exec.Command(filepath.Join(stacktest.RepoRoot(), "scripts", "cluster.sh"), "start", node)
	cmd.Env = append(os.Environ(), "CLUSTER_DATA="+p.data)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("cluster.sh start %s: %v\n%s", node, err, out)
	}
	return nil
}

func (p profile) conn(t *testing.T, addr string) driver.Conn {
	t.Helper()
	c, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Username: "default"},
		DialTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dropOnCluster removes the database from every node (and its replicas from
// ZooKeeper) when the test ends.
func (p profile) dropOnCluster(t *testing.T, db string) {
	t.Cleanup(func() {
		c, err := clickhouse.Open(&clickhouse.Options{Addr: p.clickhouse, Auth: clickhouse.Auth{Username: "default"}, DialTimeout: 10 * time.Second})
		if err != nil {
			return
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"` ON CLUSTER `"+p.name+"`"); err != nil {
			t.Logf("drop database %s on cluster: %v", db, err)
		}
	})
}

// newStack is a stack on the profile whose schema `auditline migrate
// --cluster` created.
func newStack(t *testing.T, p profile) *stacktest.Stack {
	t.Helper()
	name := stacktest.NewName()
	p.dropOnCluster(t, name) // registered first: runs after the stack's own cleanup
	st := stacktest.New(t, p.servers(), name)
	p.secure(&st.Config)
	return st
}

// secure points a stack's configuration at the profile's secure endpoints:
// Kafka over SASL_SSL, ClickHouse over TLS as the password user, S3 over
// HTTPS, each certificate checked against the profile's private CA.
func (p profile) secure(c *app.Config) {
	tc := tlsclient.Config{Enabled: true, CAFile: p.ca}
	c.Kafka.Brokers = p.kafkaSecure
	c.Kafka.ReplicationFactor = 3
	c.Kafka.TLS = tc
	c.Kafka.SASL = topic.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: p.kafkaUser, Password: p.kafkaPass}
	c.Store.ClickHouse.Addr = p.clickhouseSecure
	c.Store.ClickHouse.TLS = tc
	c.Store.ClickHouse.Username, c.Store.ClickHouse.Password = p.clickhouseUser, p.chPass
	c.Archive.S3.Secure, c.Archive.S3.CAFile = true, p.ca
}

func TestMigrateCluster(t *testing.T) {
	p := loadProfile(t)
	st := newStack(t, p)
	cfg := st.ConfigFile()
	out := st.Must("migrate", "--config", cfg, "--cluster", p.name)
	if !strings.Contains(out, "statements applied ON CLUSTER") || !strings.Contains(out, "topics "+st.Name+".") {
		t.Fatalf("migrate --cluster:\n%s", out)
	}
	want := map[string]string{}
	for _, tb := range []string{store.TableDecisions, store.TableRawEvents, store.TableRejected, store.TableProgress, store.TableVersions, store.TableSuperseded} {
		want[tb] = "Distributed"
		want[tb+"_local"] = "ReplicatedReplacingMergeTree"
	}
	ctx := context.Background()
	for _, addr := range p.clickhouse {
		rows, err := p.conn(t, addr).Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", st.Name)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var n, e string
			if err := rows.Scan(&n, &e); err != nil {
				t.Fatal(err)
			}
			got[n] = e
		}
		rows.Close()
		for n, e := range want {
			if got[n] != e {
				t.Errorf("%s: %s.%s engine %q, want %q", addr, st.Name, n, got[n], e)
			}
		}
		if got["decision_records_latest"] != "View" || got["decision_records_progress_mv"] != "MaterializedView" {
			t.Errorf("%s: views missing: %v", addr, got)
		}
	}
	// Idempotent: the same command again succeeds and changes nothing.
	st.Must("migrate", "--config", cfg, "--cluster", p.name, "--skip-topics")
	// An unknown cluster is refused before any DDL, naming the known ones.
	if out, err := st.Auditline("migrate", "--config", cfg, "--cluster", "nosuch", "--skip-topics"); err == nil ||
		!strings.Contains(out, `cluster "nosuch" is not in the server's remote_servers (it knows: `) || !strings.Contains(out, p.name) {
		t.Errorf("migrate --cluster nosuch: %v\n%s", err, out)
	}
}

func envInt(t *testing.T, name string, def int64) int64 {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, v, err)
	}
	return n
}

// TestClusterFaults is the cluster fault suite (see the package doc).
func TestClusterFaults(t *testing.T) {
	p := loadProfile(t)
	payloads := envInt(t, "AUDITLINE_CLUSTER_PAYLOADS", 10_000)
	rate := envInt(t, "AUDITLINE_CLUSTER_RATE", 200) // per loadgen; two run
	seed := envInt(t, "AUDITLINE_CLUSTER_SEED", time.Now().UnixNano()%1_000_000_000)
	settle := time.Duration(envInt(t, "AUDITLINE_CLUSTER_SETTLE_SECONDS", 600)) * time.Second
	rng := rand.New(rand.NewPCG(uint64(seed), 0x636c7573))
	t0 := time.Now()
	stacktest.Say("cluster: seed %d (replay with AUDITLINE_CLUSTER_SEED=%d), %d payloads, 2 loadgens at %d/s each", seed, seed, payloads, rate)

	st := newStack(t, p)
	if st.LogDir = os.Getenv("AUDITLINE_CLUSTER_LOGS"); st.LogDir == "" {
		st.LogDir = filepath.Join(st.Dir, "logs")
	}
	if err := os.MkdirAll(st.LogDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := &st.Config
	cfg.Kafka.Partitions = 4
	// A killed member's partitions move after the session timeout.
	cfg.Kafka.SessionTimeout, cfg.Kafka.HeartbeatInterval = 10*time.Second, time.Second
	cfg.Ingest.Auth.Tokens = []auth.Token{{Name: "cluster-litellm", SHA256: auth.Hash(token),
		Scopes: []auth.Scope{auth.ScopeLiteLLM, auth.ScopeAlerts, auth.ScopeAudit, auth.ScopeGateway}}}
	// acks=all on three brokers sharing two busy cores: give Kafka time
	// before a body is refused (503 produce_timeout; refusals lose nothing,
	// they only shrink the accepted set).
	cfg.Ingest.ProduceTimeout = 15 * time.Second
	cfg.Store.Linger = store.DefaultLinger
	cfg.Archive.Prefix = "cluster/" + st.Name + "/"
	cfg.Archive.Batch.MaxAge = 5 * time.Second
	cfg.Archive.Checkpoint.Interval = 20 * time.Second
	cfgPath := st.ConfigFile()
	st.Must("migrate", "--config", cfgPath, "--cluster", p.name)
	// The second member of each group: the same configuration, ingest on
	// its own port.
	cfg2 := st.Config
	cfg2.Ingest.Listen = fmt.Sprintf("127.0.0.1:%d", stacktest.FreePort())
	cfg2Path := st.WriteConfig("auditline-2.yaml", cfg2)

	order := []string{"store", "archive", "enrich", "ingest"} // downstream first
	members := map[string][2]*stacktest.Proc{}
	for _, stage := range order {
		var m [2]*stacktest.Proc
		for i, path := range []string{cfgPath, cfg2Path} {
			m[i] = st.AuditlineProc(fmt.Sprintf("%s-%d", stage, i+1), stage, "--config", path)
			m[i].Restart = true
			m[i].Start()
		}
		members[stage] = m
	}
	urls := []string{"http://" + cfg.Ingest.Listen, "http://" + cfg2.Ingest.Listen}
	for _, u := range urls {
		st.WaitReady(u)
	}
	stacktest.Say("cluster: 2 members per stage up; logs in %s", st.LogDir)

	// Load: two loadgens, one per ingest, half the payloads each.
	var keyFiles []string
	var lgs []*stacktest.Proc
	lgDone := make(chan error, 2)
	for i, u := range urls {
		kf := filepath.Join(st.Dir, fmt.Sprintf("accepted-keys-%d.txt", i+1))
		keyFiles = append(keyFiles, kf)
		lg := st.AuditlineProc(fmt.Sprintf("loadgen-%d", i+1), "loadgen", "--url", u, "--token", token,
			"--payloads", strconv.FormatInt(payloads/2, 10), "--seed", strconv.FormatInt(seed+int64(i)*7919, 10),
			"--rate", strconv.FormatInt(rate, 10), "--batch", "64", "--concurrency", "2", "--accepted-keys", kf)
		lg.Start()
		exited, exit := lg.Exited()
		go func() { <-exited; lgDone <- exit() }()
		lgs = append(lgs, lg)
	}

	// Faults, in a seeded order at seeded times over the load, each one a
	// SIGKILL now and a restart later (in the background, so that the next
	// fault is not delayed by a slow restart): one member of each stage
	// (restarted after up to 3 s), a Kafka broker (after 5-10 s), a
	// ClickHouse replica of shard 01 and then, once it is back, one of shard
	// 02 (each after 5-10 s; never both replicas of a shard at once).
	type fault struct {
		name    string
		kill    func()
		restart func() error
		down    time.Duration
		after   chan struct{} // closed once restarted
		wait    chan struct{} // kill only once this is closed (nil: at once)
	}
	killMember := func(stage string) *fault {
		i := rng.IntN(2)
		m := members[stage][i]
		return &fault{name: fmt.Sprintf("SIGKILL %s-%d", stage, i+1), kill: m.Kill,
			restart: func() error { m.Start(); return nil }, down: time.Duration(rng.IntN(3000)) * time.Millisecond}
	}
	killNode := func(node string) *fault {
		return &fault{name: "SIGKILL " + node, kill: func() { p.kill(t, node) }, restart: func() error { return p.start(node) },
			down: time.Duration(5000+rng.IntN(5000)) * time.Millisecond}
	}
	faults := []*fault{killMember("ingest"), killMember("enrich"), killMember("store"), killMember("archive"),
		killNode(fmt.Sprintf("kafka-%d", 1+rng.IntN(3)))}
	rng.Shuffle(len(faults), func(i, j int) { faults[i], faults[j] = faults[j], faults[i] })
	ch1, ch2 := killNode(fmt.Sprintf("clickhouse-%d", 1+rng.IntN(2))), killNode(fmt.Sprintf("clickhouse-%d", 3+rng.IntN(2)))
	// The shard 01 replica goes at a random place among the others, the
	// shard 02 one last.
	at := rng.IntN(len(faults) + 1)
	faults = append(faults[:at], append([]*fault{ch1}, faults[at:]...)...)
	faults = append(faults, ch2)
	for _, f := range faults {
		f.after = make(chan struct{})
	}
	ch2.wait = ch1.after
	loadTime := time.Duration(float64(payloads/2) / float64(max(rate, 1)) * float64(time.Second))
	gap := max(loadTime/time.Duration(len(faults)+1), 2*time.Second)
	gaps := make([]time.Duration, len(faults))
	for i := range gaps {
		gaps[i] = gap/2 + time.Duration(rng.Int64N(int64(gap)))
	}
	finished := 0
	var lgErrs []error
	for i, f := range faults {
		select {
		case err := <-lgDone:
			finished++
			lgErrs = append(lgErrs, err)
		case <-time.After(gaps[i]):
		}
		if f.wait != nil {
			<-f.wait
		}
		stacktest.Say("cluster: fault %d at %s: %s for %s (loadgens running: %d)", i+1, time.Since(t0).Round(time.Second), f.name, f.down, 2-finished)
		f.kill()
		go func() {
			defer close(f.after)
			time.Sleep(f.down)
			if err := f.restart(); err != nil {
				t.Errorf("restart after %s: %v", f.name, err)
			}
		}()
	}
	for _, f := range faults {
		<-f.after
	}
	stacktest.Say("cluster: every fault done and restarted at %s", time.Since(t0).Round(time.Second))
	var settled time.Duration
	for ; finished < 2; finished++ {
		select {
		case err := <-lgDone:
			lgErrs = append(lgErrs, err)
		case <-time.After(20 * time.Minute):
			t.Fatalf("loadgen did not finish within 20 min")
		}
	}
	var sent, accepted, refused int
	for _, err := range lgErrs {
		if err != nil {
			t.Fatalf("loadgen: %v\n%s\n%s", err, lgs[0].Output(), lgs[1].Output())
		}
	}
	for _, lg := range lgs {
		s, a, r := parseLoadgen(t, lg.Output())
		sent, accepted, refused = sent+s, accepted+a, refused+r
	}
	want := map[string]bool{}
	for _, kf := range keyFiles {
		readKeys(t, kf, want)
	}
	stacktest.Say("cluster: loadgens done after %s: sent %d, accepted %d (%d request keys), refused %d; settling (up to %s)",
		time.Since(t0).Round(time.Second), sent, accepted, len(want), refused, settle)

	ctx := context.Background()
	arch := st.Archive()
	var ch map[string]stacktest.Record
	var err error
	deadline := time.Now().Add(settle)
	for {
		ch, err = st.Records(ctx)
		if err == nil {
			err = arch.Update(ctx)
		}
		pending := 0
		if err == nil {
			latest := arch.Latest()
			for id := range want {
				if c, ok := ch[id]; !ok || latest[id] != c.Latest {
					pending++
				}
			}
			if pending == 0 {
				settled = time.Since(t0)
				break
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("after %s: %d accepted requests not yet in both ClickHouse and the archive (last error: %v)", settle, pending, err)
			break
		}
		stacktest.Say("cluster: settling: %d of %d pending (ClickHouse %d records, archive %d leaves; err %v)", pending, len(want), len(ch), len(arch.Leaves), err)
		time.Sleep(5 * time.Second)
	}
	// CPU per stage (both members' current processes, so a member killed
	// during the run counts from its restart): capacity figures
	// (docs/capacity.md).
	var cpu []string
	for _, stage := range order {
		var sec float64
		for _, m := range members[stage] {
			sec += cpuSeconds(m.Pid())
		}
		cpu = append(cpu, fmt.Sprintf("%s %.1f s", stage, sec))
	}
	for _, stage := range []string{"ingest", "enrich", "archive", "store"} {
		for _, m := range members[stage] {
			if err := m.Stop(); err != nil {
				t.Errorf("%v", err)
			}
		}
	}
	if ch, err = st.Records(ctx); err != nil {
		t.Fatal(err)
	}
	if err := arch.Update(ctx); err != nil {
		t.Fatal(err)
	}
	latest := arch.Latest()
	var recorded, archived, chDup, arDup, missingCH, missingAR, disagree int
	for id := range want {
		c, ok := ch[id]
		if !ok {
			missingCH++
		} else {
			recorded++
			chDup += c.RowsAtLatest - 1
		}
		v, ok := latest[id]
		if !ok {
			missingAR++
		} else {
			archived++
			arDup += arch.Leaves[stacktest.IDVersion{ID: id, V: v}] - 1
		}
		if ok && c.Latest != v {
			disagree++
		}
	}
	// No secret reaches any member's log, not even in the errors of outages.
	for _, stage := range order {
		for _, m := range members[stage] {
			for what, secret := range map[string]string{"ingest token": token, "Kafka SASL password": p.kafkaPass,
				"ClickHouse password": p.chPass, "S3 secret key": p.s3.SecretKey} {
				if strings.Contains(string(m.Log()), secret) {
					t.Errorf("the %s appears in %s's log", what, m.Name)
				}
			}
		}
	}
	shards := shardCounts(t, p, st.Name)
	verifyOut, verifyErr := st.Auditline("verify", "--config", cfgPath, "--key", st.PublicKey(), "--retention-mode", "GOVERNANCE")
	var kills []string
	for _, stage := range order {
		for _, m := range members[stage] {
			if k, e := m.Counts(); k+e > 0 {
				kills = append(kills, fmt.Sprintf("%s %d kill(s), %d exit(s)", m.Name, k, e))
			}
		}
	}
	var names []string
	for _, f := range faults {
		names = append(names, f.name)
	}
	summary := fmt.Sprintf(`cluster fault suite result (seed %d, %s; 3 brokers, ClickHouse 2 shards x 2 replicas, MinIO 4 drives; Kafka SASL_SSL, ClickHouse TLS, S3 HTTPS):
  sent              %d payloads (2 loadgens, one per ingest member)
  accepted          %d payloads (%d request keys)
  refused           %d payloads
  recorded          %d of %d accepted requests have a latest record in ClickHouse
  archived          %d of %d accepted requests have a latest leaf in the archive
  duplicates        %d in ClickHouse (rows at a record's latest version beyond one, FINAL over both shards), %d in the archive
  missing           %d in ClickHouse, %d in the archive
  disagreeing       %d (ClickHouse and archive latest versions differ)
  per shard         %s
  faults            %s
  members           %s
  CPU (live members) %s, over %s from start to settled
  verify            %v
`, seed, time.Since(t0).Round(time.Second), sent, accepted, len(want), refused, recorded, len(want), archived, len(want),
		chDup, arDup, missingCH, missingAR, disagree, shards, strings.Join(names, "; "), strings.Join(kills, "; "), strings.Join(cpu, ", "), settled.Round(time.Second), errString(verifyErr))
	fmt.Print(summary)
	if out := os.Getenv("AUDITLINE_CLUSTER_SUMMARY"); out != "" {
		_ = os.WriteFile(out, []byte(summary), 0o644)
	}
	if missingCH+missingAR+chDup+arDup+disagree > 0 {
		t.Errorf("lost or duplicated records: missing %d/%d, duplicates %d/%d, disagreeing %d", missingCH, missingAR, chDup, arDup, disagree)
	}
	if verifyErr != nil {
		t.Errorf("auditline verify: %v\n%s", verifyErr, verifyOut)
	}
	if accepted == 0 || len(want) == 0 {
		t.Errorf("nothing was accepted")
	}
}

// shardCounts describes the decision_records rows each replica holds once
// replication caught up: both replicas of a shard must hold the same rows,
// and both shards some.
func shardCounts(t *testing.T, p profile, db string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var parts []string
	counts := make([]uint64, len(p.clickhouse))
	for i, addr := range p.clickhouse {
		c := p.conn(t, addr)
		if err := c.Exec(ctx, "SYSTEM SYNC REPLICA `"+db+"`.`"+store.TableDecisions+"_local`"); err != nil {
			t.Errorf("%s: sync replica: %v", addr, err)
		}
		if err := c.QueryRow(ctx, "SELECT count() FROM `"+db+"`.`"+store.TableDecisions+"_local` FINAL").Scan(&counts[i]); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
		parts = append(parts, fmt.Sprintf("clickhouse-%d %d", i+1, counts[i]))
	}
	if len(counts) == 4 {
		if counts[0] != counts[1] || counts[2] != counts[3] {
			t.Errorf("replicas disagree: %s", strings.Join(parts, ", "))
		}
		if counts[0] == 0 || counts[2] == 0 {
			t.Errorf("a shard holds no rows: %s", strings.Join(parts, ", "))
		}
	}
	return "decision_records rows (FINAL) " + strings.Join(parts, ", ")
}

func errString(err error) string {
	if err == nil {
		return "OK"
	}
	return "FAILED: " + err.Error()
}

var loadgenLine = regexp.MustCompile(`payloads: sent (\d+), accepted (\d+), refused (\d+)`)

func parseLoadgen(t *testing.T, out string) (sent, accepted, refused int) {
	t.Helper()
	m := loadgenLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in loadgen output:\n%s", out)
	}
	sent, _ = strconv.Atoi(m[1])
	accepted, _ = strconv.Atoi(m[2])
	refused, _ = strconv.Atoi(m[3])
	return
}

// readKeys adds the record ids of the accepted request keys in path to out.
func readKeys(t *testing.T, path string, out map[string]bool) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k := strings.TrimSpace(sc.Text()); k != "" {
			out[record.ID(k)] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestTransportSecurity: the profile's servers refuse plaintext and wrong
// credentials on their secure endpoints, accept the right ones, and no
// error message carries a password.
func TestTransportSecurity(t *testing.T) {
	p := loadProfile(t)
	ctx := context.Background()
	ca := tlsclient.Config{Enabled: true, CAFile: p.ca}
	scram := topic.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: p.kafkaUser, Password: p.kafkaPass}
	wrong := "wrong-password-123"

	kafka := func(brokers []string, tc tlsclient.Config, sasl topic.SASLConfig) error {
		c := topic.NewDefaultConfig()
		c.Brokers, c.TLS, c.SASL, c.ReplicationFactor = brokers, tc, sasl, 3
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return topic.EnsureTopics(ctx, c, raw.Topics{Prefix: stacktest.NewName() + "."})
	}
	for _, tc := range []struct {
		name    string
		brokers []string
		tls     tlsclient.Config
		sasl    topic.SASLConfig
		ok      bool
	}{
		{"SASL_SSL with the CA and the password", p.kafkaSecure, ca, scram, true},
		{"plaintext to the SASL_SSL listener", p.kafkaSecure, tlsclient.Config{}, scram, false},
		{"TLS without SASL", p.kafkaSecure, ca, topic.SASLConfig{}, false},
		{"wrong password", p.kafkaSecure, ca, topic.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: p.kafkaUser, Password: wrong}, false},
		{"unknown user", p.kafkaSecure, ca, topic.SASLConfig{Mechanism: "SCRAM-SHA-512", Username: "mallory", Password: p.kafkaPass}, false},
		{"system roots (the private CA is not trusted)", p.kafkaSecure, tlsclient.Config{Enabled: true}, scram, false},
	} {
		err := kafka(tc.brokers, tc.tls, tc.sasl)
		if (err == nil) != tc.ok {
			t.Errorf("kafka, %s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && (strings.Contains(err.Error(), p.kafkaPass) || strings.Contains(err.Error(), wrong)) {
			t.Errorf("kafka, %s: the password is in the error: %v", tc.name, err)
		}
		stacktest.Say("cluster: kafka %s: %v", tc.name, errString(err))
	}

	clickhouse := func(addr string, tc tlsclient.Config, user, pass string) error {
		conn, err := store.Open(store.ClickHouseConfig{Addr: []string{addr}, Database: "default", Username: user, Password: pass, TLS: tc, DialTimeout: 5 * time.Second})
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err = store.Detect(ctx, conn)
		return err
	}
	for _, tc := range []struct {
		name       string
		addr       string
		tls        tlsclient.Config
		user, pass string
		ok         bool
	}{
		{"TLS with the CA and the password", p.clickhouseSecure[0], ca, p.clickhouseUser, p.chPass, true},
		{"TLS, replica of shard 02", p.clickhouseSecure[3], ca, p.clickhouseUser, p.chPass, true},
		{"plaintext to the TLS port", p.clickhouseSecure[0], tlsclient.Config{}, p.clickhouseUser, p.chPass, false},
		{"wrong password", p.clickhouseSecure[0], ca, p.clickhouseUser, wrong, false},
		{"no password", p.clickhouseSecure[0], ca, p.clickhouseUser, "", false},
		{"system roots (the private CA is not trusted)", p.clickhouseSecure[0], tlsclient.Config{Enabled: true}, p.clickhouseUser, p.chPass, false},
	} {
		err := clickhouse(tc.addr, tc.tls, tc.user, tc.pass)
		if (err == nil) != tc.ok {
			t.Errorf("clickhouse, %s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && (strings.Contains(err.Error(), p.chPass) || strings.Contains(err.Error(), wrong)) {
			t.Errorf("clickhouse, %s: the password is in the error: %v", tc.name, err)
		}
		stacktest.Say("cluster: clickhouse %s: %v", tc.name, errString(err))
	}

	s3 := func(cfg bucket.Config) error {
		b, err := bucket.New(cfg)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return b.CheckObjectLock(ctx)
	}
	good := bucket.Config{Endpoint: p.s3.Endpoint, Secure: true, Region: "us-east-1", AccessKey: p.s3.AccessKey, SecretKey: p.s3.SecretKey, Bucket: p.s3.Bucket, CAFile: p.ca}
	plain, noCA, bad := good, good, good
	plain.Secure, plain.CAFile = false, ""
	noCA.CAFile = ""
	bad.SecretKey = wrong
	for _, tc := range []struct {
		name string
		cfg  bucket.Config
		ok   bool
	}{
		{"HTTPS with the CA and the secret key", good, true},
		{"plain HTTP to the HTTPS server", plain, false},
		{"system roots (the private CA is not trusted)", noCA, false},
		{"wrong secret key", bad, false},
	} {
		err := s3(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("s3, %s: err %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && (strings.Contains(err.Error(), p.s3.SecretKey) || strings.Contains(err.Error(), wrong)) {
			t.Errorf("s3, %s: the secret key is in the error: %v", tc.name, err)
		}
		stacktest.Say("cluster: s3 %s: %v", tc.name, errString(err))
	}

	// The CLI refuses wrong Kafka credentials with a clear error and without
	// printing them.
	st := newStack(t, p)
	st.Config.Kafka.SASL.Password = wrong
	out, err := st.Auditline("migrate", "--config", st.ConfigFile(), "--cluster", p.name, "--timeout", "30s")
	if err == nil || strings.Contains(out, wrong) {
		t.Errorf("migrate with a wrong Kafka password: %v\n%s", err, out)
	}
	stacktest.Say("cluster: migrate with a wrong Kafka password: %s", strings.TrimSpace(string(stacktest.Tail([]byte(out), 300))))
}

// cpuSeconds is the user + system CPU time of a live process (0 if gone).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command (which may hold spaces) start after ") ".
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+2:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}
