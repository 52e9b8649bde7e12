// Package auth decides who a dashboard user is and what they may see.
//
// Two ways in, both configured, never implied:
//
//   - local users: a name, a password hash (argon2id in PHC form, or bcrypt
//     $2a$/$2b$/$2y$) and a role plus tenants from the config file. Plain
//     passwords are never accepted in the config, and an unknown name costs the
//     same hash work as a wrong password, so timing does not reveal which names
//     exist. Repeated failures for one name are throttled.
//   - a trusted header set by an SSO proxy (oauth2-proxy, Pomerium, …): honoured
//     only when the TCP peer is one of the configured proxy networks. A header
//     from anywhere else is ignored (not trusted, not an error page), because a
//     browser can send any header it likes.
//
// Either way the result is a Principal with one Role (viewer < reviewer <
// admin) and the tenants whose records it may read. Tenants are explicit: the
// wildcard "*" (every tenant) must be written in the config; a user with no
// tenant sees nothing.
//
// Sessions live in server memory (Sessions), keyed by the SHA-256 of a 256-bit
// random id, with an idle and an absolute timeout and a bounded count. Server
// memory rather than a signed cookie so that logout and expiry really revoke a
// session; the price is that a restart logs everyone out and replicas need
// sticky sessions. Each session carries its own CSRF token, compared in
// constant time on every POST.
package auth
