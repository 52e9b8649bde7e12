package auth

import (
	"fmt"
	"slices"
)

// Role orders what a user may do. Each role includes the ones below it.
type Role int

const (
	// Viewer reads dashboards and records of its tenants.
	Viewer Role = iota + 1
	// Reviewer also records review outcomes on sampled records.
	Reviewer
	// Admin also switches sampling burst mode.
	Admin
)

func (r Role) String() string {
	switch r {
	case Viewer:
		return "viewer"
	case Reviewer:
		return "reviewer"
	case Admin:
		return "admin"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole parses "viewer", "reviewer" or "admin".
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return Viewer, nil
	case "reviewer":
		return Reviewer, nil
	case "admin":
		return Admin, nil
	}
	return 0, fmt.Errorf("unknown role %q, want viewer, reviewer or admin", s)
}

// AllTenants is the tenant wildcard: every tenant, present and future.
const AllTenants = "*"

// Principal is an authenticated user.
type Principal struct {
	Name    string
	Role    Role
	Tenants []string // sorted; AllTenants alone means every tenant
	Via     string   // "password" or "sso"
}

// Can reports whether p's role includes r.
func (p Principal) Can(r Role) bool { return p.Role >= r }

// EveryTenant reports whether p may see every tenant.
func (p Principal) EveryTenant() bool { return slices.Contains(p.Tenants, AllTenants) }

// Sees reports whether p may read records of tenant.
func (p Principal) Sees(tenant string) bool {
	return p.EveryTenant() || slices.Contains(p.Tenants, tenant)
}

func normTenants(ts []string) []string {
	out := slices.Clone(ts)
	slices.Sort(out)
	out = slices.Compact(out)
	if slices.Contains(out, AllTenants) {
		return []string{AllTenants}
	}
	return out
}
