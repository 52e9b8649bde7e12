package loadgen

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
)

// identity is who made a request: virtual key, user, team, org, end user.
type identity struct {
	keyHash, keyAlias             string
	keySpend, keyMax              float64
	userID, email                 string
	userSpend, userMax            float64
	teamID, teamAlias             string
	teamSpend, teamMax            float64
	orgID, orgAlias               string
	endUser, ip, userAgent, route string
}

type identities struct{ all []identity }

// newIdentities makes a fixed population: 4 orgs, 12 teams, 60 users, 40 keys.
func newIdentities(rng *rand.Rand) identities {
	orgs := []string{"acme-finance", "acme-retail", "acme-research", "acme-ops"}
	var ids identities
	for k := range 40 {
		team := k % 12
		org := team % len(orgs)
		user := (k * 7) % 60
		h := sha256.Sum256(fmt.Appendf(nil, "sk-loadgen-%d", k))
		id := identity{
			keyHash: hex.EncodeToString(h[:]), keyAlias: fmt.Sprintf("svc-%s-%02d", orgs[org][5:], k),
			keyMax: float64(50 + 50*(k%4)), userID: fmt.Sprintf("u-%04d", 1000+user),
			email: fmt.Sprintf("user%04d@%s.example", 1000+user, orgs[org]), userMax: 20,
			teamID: fmt.Sprintf("team-%02d-%08x", team, rng.Uint32()), teamAlias: fmt.Sprintf("team-%02d", team),
			teamMax: 1000, orgID: fmt.Sprintf("org-%d", org), orgAlias: orgs[org],
			ip: fmt.Sprintf("10.12.%d.%d", team, 10+k), userAgent: "OpenAI/Python 1.82.0", route: "/chat/completions",
		}
		if k%3 == 0 {
			id.endUser = fmt.Sprintf("customer-%04d", 8000+k)
		}
		id.keySpend = id.keyMax * rng.Float64() * 0.7
		id.userSpend = id.userMax * rng.Float64() * 0.7
		id.teamSpend = id.teamMax * rng.Float64() * 0.7
		ids.all = append(ids.all, id)
	}
	return ids
}

func (ids identities) pick(rng *rand.Rand) identity { return ids.all[rng.IntN(len(ids.all))] }

// nearBudget returns an identity whose key, user and team spend is at
// 85–99% of their budgets.
func (ids identities) nearBudget(rng *rand.Rand) identity {
	id := ids.pick(rng)
	id.keySpend = id.keyMax * (0.85 + rng.Float64()*0.14)
	id.userSpend = id.userMax * (0.85 + rng.Float64()*0.14)
	id.teamSpend = id.teamMax * (0.85 + rng.Float64()*0.14)
	return id
}

func (id identity) apply(p *node) {
	m := "metadata."
	p.set(m+"user_api_key_hash", id.keyHash)
	p.set(m+"user_api_key_alias", id.keyAlias)
	p.set(m+"user_api_key_spend", round4(id.keySpend))
	p.set(m+"user_api_key_max_budget", id.keyMax)
	p.set(m+"user_api_key_user_spend", round4(id.userSpend))
	p.set(m+"user_api_key_user_max_budget", id.userMax)
	p.set(m+"user_api_key_team_spend", round4(id.teamSpend))
	p.set(m+"user_api_key_team_max_budget", id.teamMax)
	p.set(m+"user_api_key_org_id", id.orgID)
	p.set(m+"user_api_key_org_alias", id.orgAlias)
	p.set(m+"user_api_key_team_id", id.teamID)
	p.set(m+"user_api_key_team_alias", id.teamAlias)
	p.set(m+"user_api_key_user_id", id.userID)
	p.set(m+"user_api_key_user_email", id.email)
	p.set(m+"team_id", id.teamID)
	p.set(m+"team_alias", id.teamAlias)
	p.set(m+"requester_ip_address", id.ip)
	p.set("requester_ip_address", id.ip)
	if id.endUser != "" {
		p.set(m+"user_api_key_end_user_id", id.endUser)
		p.set("end_user", id.endUser)
	} else {
		p.set(m+"user_api_key_end_user_id", nil)
		p.set("end_user", "")
	}
}

func round4(f float64) float64 { return float64(int64(f*10000+0.5)) / 10000 }
