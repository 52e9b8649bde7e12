// Package loadgen makes realistic LiteLLM proxy traffic and sends it to
// ingest the way LiteLLM does: json_array bodies of up to 512 payloads (or
// ndjson, or one POST per payload), budget alerts one per POST, and a few
// security-gateway events.
//
// The Generator is deterministic: the same Config (seed included) yields the
// same events byte for byte, so a later stage's test can replay traffic and
// know what it must produce. Every user request gets its own request key, and
// Records says how many decision records the traffic so far should yield:
// one per distinct request key (alerts make none; gateway events join the
// record of their request).
//
// Payloads are built from the reference examples (templates/, copies of
// /work/shared/reference/litellm-examples), with fresh ids, times, identities
// and message text, and are serialised as Python's json.dumps writes them
// (", " and ": " separators, ASCII only), at 3–5 KB each like the examples.
package loadgen

import (
	"bytes"
	"embed"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

//go:embed templates/*.json
var templateFS embed.FS

// Kinds of user request the generator makes.
const (
	KindSuccess   = "success"         // one success payload
	KindStream    = "stream"          // one completed stream
	KindFallback  = "fallback"        // 429 on one group, success on the fallback group: two payloads
	KindRetry     = "retry"           // 429, then success in the same group: two payloads
	KindGuardrail = "guardrail_block" // pre-call guardrail block: one failure payload
	KindCacheHit  = "cache_hit"       // cache hit: one payload, cost 0
	KindBudget    = "budget_near"     // success with key/user/team spend near budget (+ sometimes an alert)
)

// Mix weighs the kinds of request. Zero weights are allowed; all zero means
// the default mix.
type Mix struct {
	Success, Stream, Fallback, Retry, Guardrail, CacheHit, Budget float64
}

// DefaultMix is mostly plain successes with a realistic share of the rest.
var DefaultMix = Mix{Success: 60, Stream: 15, Fallback: 5, Retry: 4, Guardrail: 4, CacheHit: 8, Budget: 4}

// Config configures a Generator.
type Config struct {
	Seed int64
	Mix  Mix
	// Gateway is the share (0..1) of requests that also get a security-gateway
	// decision event (schemas/gateway-event.v1.json).
	Gateway float64
	// Start is the epoch of the first request; zero means 2025-11-22T10:00:00Z
	// (fixed, so output does not depend on the clock).
	Start time.Time
	// Interval is the simulated time between requests (default 20ms).
	Interval time.Duration
}

// Request is one user request through the proxy and what it emits.
type Request struct {
	Key     string   // request key: the litellm_call_id shared by all its payloads
	Kind    string   // one of the Kind constants
	LiteLLM [][]byte // StandardLoggingPayloads, in emission order
	Gateway [][]byte // gateway decision events for this request
	Alerts  [][]byte // budget alert webhooks this request triggered (not joined to it)
}

// Generator makes Requests. Not safe for concurrent use.
type Generator struct {
	cfg       Config
	rng       *rand.Rand
	tpl       map[string]*node
	cum       []float64
	kinds     []string
	n         int
	ids       identities
	payloads  int
	lastAlert map[string]bool
}

// New returns a Generator for cfg.
func New(cfg Config) (*Generator, error) {
	if cfg.Mix == (Mix{}) {
		cfg.Mix = DefaultMix
	}
	if cfg.Start.IsZero() {
		cfg.Start = time.Date(2025, 11, 22, 10, 0, 0, 0, time.UTC)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.Gateway < 0 || cfg.Gateway > 1 {
		return nil, fmt.Errorf("loadgen: gateway share %v, want 0..1", cfg.Gateway)
	}
	g := &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(uint64(cfg.Seed), 0x5eed)), tpl: map[string]*node{}, lastAlert: map[string]bool{}}
	files, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, fmt.Errorf("loadgen templates: %w", err)
	}
	for _, f := range files {
		b, err := templateFS.ReadFile("templates/" + f.Name())
		if err != nil {
			return nil, fmt.Errorf("loadgen templates: %w", err)
		}
		n, err := parse(b)
		if err != nil {
			return nil, fmt.Errorf("loadgen template %s: %w", f.Name(), err)
		}
		g.tpl[f.Name()[:strings.IndexByte(f.Name(), '_')]] = n // "01", "03a", …
	}
	m := cfg.Mix
	for _, kw := range []struct {
		k string
		w float64
	}{{KindSuccess, m.Success}, {KindStream, m.Stream}, {KindFallback, m.Fallback}, {KindRetry, m.Retry},
		{KindGuardrail, m.Guardrail}, {KindCacheHit, m.CacheHit}, {KindBudget, m.Budget}} {
		if kw.w < 0 {
			return nil, fmt.Errorf("loadgen: negative weight for %s", kw.k)
		}
		if kw.w == 0 {
			continue
		}
		prev := 0.0
		if len(g.cum) > 0 {
			prev = g.cum[len(g.cum)-1]
		}
		g.cum = append(g.cum, prev+kw.w)
		g.kinds = append(g.kinds, kw.k)
	}
	g.ids = newIdentities(g.rng)
	return g, nil
}

// Records is the number of decision records the requests made so far should
// produce: one per distinct request key.
func (g *Generator) Records() int { return g.n }

// Payloads is the number of LiteLLM payloads made so far.
func (g *Generator) Payloads() int { return g.payloads }

// Next makes the next request.
func (g *Generator) Next() Request {
	g.n++
	x := g.rng.Float64() * g.cum[len(g.cum)-1]
	kind := g.kinds[len(g.kinds)-1]
	for i, c := range g.cum {
		if x < c {
			kind = g.kinds[i]
			break
		}
	}
	at := g.cfg.Start.Add(time.Duration(g.n) * g.cfg.Interval)
	r := Request{Kind: kind, Key: g.uuid()}
	trace := g.uuid()
	who := g.ids.pick(g.rng)
	text := g.text(3 + g.rng.IntN(30))
	answer := g.text(3 + g.rng.IntN(25))
	t0 := float64(at.UnixMicro()) / 1e6
	switch kind {
	case KindSuccess:
		r.LiteLLM = append(r.LiteLLM, g.success("01", r.Key, trace, who, text, answer, t0, "gpt-4o"))
	case KindStream:
		r.LiteLLM = append(r.LiteLLM, g.success("02", r.Key, trace, who, text, answer, t0, "gpt-4o"))
	case KindBudget:
		who = g.ids.nearBudget(g.rng)
		r.LiteLLM = append(r.LiteLLM, g.success("08", r.Key, trace, who, text, answer, t0, "gpt-4o"))
		if g.rng.IntN(3) == 0 {
			r.Alerts = append(r.Alerts, g.alert(who))
		}
	case KindCacheHit:
		r.LiteLLM = append(r.LiteLLM, g.success("07", r.Key, trace, who, text, answer, t0, "gpt-4o"))
	case KindGuardrail:
		r.LiteLLM = append(r.LiteLLM, g.failure("05", r.Key, trace, who, text, t0, ""))
	case KindFallback:
		r.LiteLLM = append(r.LiteLLM, g.failure("03a", r.Key, trace, who, text, t0, "gpt-4o"))
		r.LiteLLM = append(r.LiteLLM, g.success("03b", r.Key, trace, who, text, answer, t0+0.6, "claude-sonnet-4"))
	case KindRetry:
		r.LiteLLM = append(r.LiteLLM, g.failure("03a", r.Key, trace, who, text, t0, "gpt-4o"))
		r.LiteLLM = append(r.LiteLLM, g.success("01", r.Key, trace, who, text, answer, t0+0.8, "gpt-4o"))
	}
	if g.cfg.Gateway > 0 && g.rng.Float64() < g.cfg.Gateway {
		r.Gateway = append(r.Gateway, g.gateway(r.Key, trace, who, kind, at))
	}
	g.payloads += len(r.LiteLLM)
	return r
}

func (g *Generator) uuid() string {
	a, b := g.rng.Uint64(), g.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xfff, 0x8000|(b>>48)&0x3fff, b&0xffffffffffff)
}

func (g *Generator) hexID(n int) string {
	const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[g.rng.IntN(len(alnum))]
	}
	return string(b)
}

var words = strings.Fields(`invoice account billing usage report team budget quota summary customer
renewal contract payment overdue reminder policy credit refund discount tier region latency provider
model request token cost forecast month quarter review approval escalation ticket incident change
deployment capacity analysis draft email reply explain why how what total increase decrease`)

func (g *Generator) text(n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(words[g.rng.IntN(len(words))])
	}
	sb.WriteByte('.')
	return sb.String()
}

// common fills the fields every payload shares.
func (g *Generator) common(p *node, key, trace string, who identity, text string, t0, dur float64) {
	p.set("trace_id", trace)
	p.set("litellm_call_id", key)
	p.set("startTime", t0)
	p.set("endTime", t0+dur)
	p.set("completionStartTime", t0+dur)
	p.set("response_time", dur)
	who.apply(p)
	if m := p.get("messages"); m != nil && m.kind == 'a' && len(m.vals) > 0 {
		last := m.vals[len(m.vals)-1]
		last.set("content", text)
	}
}

func (g *Generator) success(tpl, key, trace string, who identity, text, answer string, t0 float64, group string) []byte {
	p := g.tpl[tpl].clone()
	id := "chatcmpl-" + g.hexID(29)
	dur := 0.3 + g.rng.Float64()*2.5
	in, out := 40+g.rng.IntN(900), 20+g.rng.IntN(600)
	cost := float64(in)*2.5e-6 + float64(out)*1e-5
	if tpl == "07" {
		id += fmt.Sprintf("_cache_hit%s", pyFloat(t0+dur))
		cost = 0
		p.set("saved_cache_cost", float64(in)*2.5e-6+float64(out)*1e-5)
	}
	p.set("id", id)
	g.common(p, key, trace, who, text, t0, dur)
	p.set("response_cost", cost)
	p.set("prompt_tokens", in)
	p.set("completion_tokens", out)
	p.set("total_tokens", in+out)
	if group != "" && tpl != "03b" {
		p.set("model_group", group)
	}
	if r := p.get("response"); r != nil && r.kind == 'o' {
		r.set("id", id)
		if ch := r.get("choices"); ch != nil && ch.kind == 'a' && len(ch.vals) > 0 {
			ch.vals[0].set("message.content", answer)
		}
		r.set("usage.prompt_tokens", in)
		r.set("usage.completion_tokens", out)
		r.set("usage.total_tokens", in+out)
	}
	var buf bytes.Buffer
	p.encode(&buf)
	return buf.Bytes()
}

func (g *Generator) failure(tpl, key, trace string, who identity, text string, t0 float64, group string) []byte {
	p := g.tpl[tpl].clone()
	p.set("id", key) // a failure payload's id is the call id
	g.common(p, key, trace, who, text, t0, 0.05+g.rng.Float64()*0.5)
	if group != "" {
		p.set("model_group", group)
	}
	var buf bytes.Buffer
	p.encode(&buf)
	return buf.Bytes()
}

func (g *Generator) alert(who identity) []byte {
	var p *node
	switch g.rng.IntN(3) {
	case 0:
		p = g.tpl["10"].clone() // budget_crossed, key
		p.set("token", who.keyHash)
		p.set("key_alias", who.keyAlias)
		p.set("user_id", who.userID)
		p.set("team_id", who.teamID)
		p.set("team_alias", who.teamAlias)
		p.set("spend", who.keyMax*(1+g.rng.Float64()*0.01))
		p.set("max_budget", who.keyMax)
	case 1:
		p = g.tpl["11"].clone() // threshold_crossed, team
		p.set("team_id", who.teamID)
		p.set("team_alias", who.teamAlias)
		p.set("spend", who.teamMax*(0.95+g.rng.Float64()*0.04))
		p.set("max_budget", who.teamMax)
	default:
		p = g.tpl["13"].clone() // spend_tracked, end_user
		p.set("token", who.keyHash)
		p.set("key_alias", who.keyAlias)
		p.set("customer_id", who.endUser)
		p.set("spend", g.rng.Float64()*0.05)
		p.set("event_message", "Customer spend tracked. Customer="+who.endUser)
	}
	var buf bytes.Buffer
	p.encode(&buf)
	return buf.Bytes()
}

var decisions = []string{"allow", "allow", "allow", "allow", "review", "modify", "block"}

func (g *Generator) gateway(key, trace string, who identity, kind string, at time.Time) []byte {
	decision := decisions[g.rng.IntN(len(decisions))]
	if kind == KindGuardrail {
		decision = "block"
	}
	labels := []string{}
	if g.rng.IntN(3) == 0 {
		labels = append(labels, "pii")
	}
	if g.rng.IntN(5) == 0 {
		labels = append(labels, "confidential")
	}
	ev := obj(
		"schema", "auditline.gateway.v1",
		"event_id", "gw-"+g.uuid(),
		"request_key", key,
		"trace_id", trace,
		"occurred_at", at.Add(-5*time.Millisecond).Format("2006-01-02T15:04:05.000Z07:00"),
		"gateway", "loadgen-policy-gw",
		"stage", "pre_call",
		"subject", obj("id", who.email, "tenant", who.orgAlias, "roles", []string{"analyst"}),
		"policy", obj("id", "data-egress", "version", "2025-11-01.3", "decision", decision),
		"data_classification", labels,
		"risk_score", float64(g.rng.IntN(100))/100,
		"model_alias", "gpt-4o",
	)
	var buf bytes.Buffer
	ev.encode(&buf)
	return buf.Bytes()
}
