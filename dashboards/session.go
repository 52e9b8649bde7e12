package dashboards

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/auditline/auditline/dashboards/auth"
	"github.com/auditline/auditline/dashboards/oversight"
)

const (
	sessionCookie = "auditline_session"
	loginCookie   = "auditline_login"  // the login form's signed token (double submit)
	deviceCookie  = "auditline_device" // signed: this browser logged in as this user before (auth/login.go)
)

type ctxKey struct{}

// session returns the request's session (set by requireLogin).
func session(r *http.Request) *auth.Session {
	s, _ := r.Context().Value(ctxKey{}).(*auth.Session)
	return s
}

// secure reports whether cookies should be marked Secure (and get the
// __Host- prefix) for r. Under "auto" that is every request except plain
// HTTP to a loopback host: a session cookie set for a LAN or public name
// over plain HTTP would travel in clear text, so there the browser gets a
// Secure cookie it only returns over HTTPS (put TLS in front, or set
// dashboard.tls).
func (s *Server) secure(r *http.Request) bool {
	switch s.cfg.CookieSecure {
	case "always":
		return true
	case "never":
		return false
	}
	if r.TLS != nil {
		return true
	}
	// Behind a trusted SSO proxy, trust its view of the scheme.
	if _, ok, _ := s.auth.Proxy(r); ok && strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	return !loopbackHost(r.Host)
}

// loopbackHost reports whether a Host header names this machine's loopback
// interface (localhost, 127.0.0.0/8, ::1).
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// cookieName uses the __Host- prefix when Secure: the browser then refuses the
// cookie unless it is Secure, host-only and Path=/.
func cookieName(base string, secure bool) string {
	if secure {
		return "__Host-" + base
	}
	return base
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge time.Duration) {
	sec := s.secure(r)
	c := &http.Cookie{Name: cookieName(base, sec), Value: value, Path: "/", HttpOnly: true, Secure: sec, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	} else if maxAge < 0 {
		c.MaxAge = -1
	}
	http.SetCookie(w, c)
}

func (s *Server) cookie(r *http.Request, base string) string {
	c, err := r.Cookie(cookieName(base, s.secure(r)))
	if err != nil {
		return ""
	}
	return c.Value
}

// requireLogin resolves the session (or a trusted SSO header) and, for POST,
// checks the CSRF token. Without a session a GET redirects to /login and a
// POST gets 403.
func (s *Server) requireLogin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.sessions.Get(s.cookie(r, sessionCookie))
		p, viaProxy, err := s.auth.Proxy(r)
		if err != nil {
			s.m.denied.WithLabelValues("sso").Inc()
			s.log.Warn("sso login refused", "err", err)
			s.fail(w, r, http.StatusForbidden, "Your single sign-on identity has no dashboard access: "+err.Error())
			return
		}
		if viaProxy && (sess == nil || sess.Principal.Name != p.Name || sess.Principal.Via != "sso") {
			// The proxy is the authority: (re)bind a session to its user.
			id, ns, err := s.sessions.Create(p)
			if err != nil {
				s.fail(w, r, http.StatusInternalServerError, "could not start a session")
				return
			}
			s.m.logins.WithLabelValues("sso").Inc()
			if !s.access(w, r, p, oversight.AccessEvent{Action: "login", Tenant: auth.AllTenants}) {
				s.sessions.Delete(id)
				return
			}
			s.setCookie(w, r, sessionCookie, id, 0)
			sess = ns
			if r.Method == http.MethodPost {
				// A fresh session has a fresh CSRF token that this form cannot carry.
				s.m.denied.WithLabelValues("csrf").Inc()
				s.fail(w, r, http.StatusForbidden, "Your session changed; reload the page and submit again.")
				return
			}
		}
		if sess == nil {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				s.m.denied.WithLabelValues("no_session").Inc()
				s.fail(w, r, http.StatusForbidden, "Your session has ended; log in again.")
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost && !sess.CheckCSRF(r.PostFormValue("csrf")) {
			s.m.denied.WithLabelValues("csrf").Inc()
			s.fail(w, r, http.StatusForbidden, "The form's security token is missing or stale; reload the page and submit again.")
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, sess)))
	}
}

// requireRole wraps a logged-in handler with a role check.
func (s *Server) requireRole(role auth.Role, next http.HandlerFunc) http.HandlerFunc {
	return s.requireLogin(func(w http.ResponseWriter, r *http.Request) {
		if !session(r).Principal.Can(role) {
			s.m.denied.WithLabelValues("role").Inc()
			s.fail(w, r, http.StatusForbidden, "This needs the "+role.String()+" role.")
			return
		}
		next(w, r)
	})
}

// loggable is a name someone typed, as the access log keeps it: at most 256
// bytes of valid UTF-8, "(empty)" for nothing.
func loggable(name string) string {
	name = strings.ToValidUTF8(name, "?")
	if len(name) > 256 {
		name = name[:256]
		for !utf8.ValidString(name) {
			name = name[:len(name)-1]
		}
	}
	if strings.TrimSpace(name) == "" {
		return "(empty)"
	}
	return name
}

// safeNext keeps a post-login redirect on this site.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.ContainsAny(next, "\r\n") {
		return "/"
	}
	return next
}

type loginPage struct {
	basePage
	Next  string
	Token string
	Error string
	User  string
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	if sess := s.sessions.Get(s.cookie(r, sessionCookie)); sess != nil {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	if _, ok, _ := s.auth.Proxy(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, http.StatusOK, "", "")
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, code int, user, msg string) {
	tok, err := s.auth.LoginToken(s.auth.ClientAddr(r))
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not start a login")
		return
	}
	s.setCookie(w, r, loginCookie, tok, s.cfg.Auth.Login.FormTTL)
	s.render(w, r, code, "login", loginPage{basePage: basePage{Title: "Log in"}, Next: safeNext(r.FormValue("next")), Token: tok, Error: msg, User: user})
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.fail(w, r, http.StatusBadRequest, "malformed form")
		return
	}
	client := s.auth.ClientAddr(r)
	if err := s.auth.CheckLoginToken(r.PostFormValue("csrf"), s.cookie(r, loginCookie), client); err != nil {
		s.m.denied.WithLabelValues("csrf").Inc()
		s.renderLogin(w, r, http.StatusForbidden, "", "The login form expired or was not issued to this browser; please try again.")
		return
	}
	name := r.PostFormValue("user")
	if len(name) > 256 || len(r.PostFormValue("password")) > 1024 {
		s.renderLogin(w, r, http.StatusBadRequest, "", "User name or password too long.")
		return
	}
	p, device, err := s.auth.Login(r.Context(), auth.Attempt{Name: name, Password: r.PostFormValue("password"),
		Client: client, Device: s.cookie(r, deviceCookie)})
	var th *auth.ThrottledError
	switch {
	case errors.As(err, &th):
		s.m.logins.WithLabelValues("throttled").Inc()
		s.m.throttled.WithLabelValues(th.Reason).Inc()
		s.log.Warn("login throttled", "user", name, "remote", client.String(), "reason", th.Reason)
		code := http.StatusTooManyRequests
		if th.Reason == "busy" {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int((th.RetryAfter+time.Second-1)/time.Second))))
		s.renderLogin(w, r, code, name, th.Error())
		return
	case err != nil:
		s.m.logins.WithLabelValues("bad_credentials").Inc()
		s.log.Info("login failed", "user", name, "remote", client.String())
		if !s.access(w, r, auth.Principal{}, oversight.AccessEvent{Action: "login_failed", Tenant: auth.AllTenants,
			Actor: oversight.Actor{ID: loggable(name), Via: "password"}}) {
			return
		}
		s.renderLogin(w, r, http.StatusUnauthorized, name, "Unknown user or wrong password.")
		return
	}
	if !s.access(w, r, p, oversight.AccessEvent{Action: "login", Tenant: auth.AllTenants}) {
		return
	}
	s.setCookie(w, r, deviceCookie, device, s.cfg.Auth.Login.DeviceTTL)
	id, _, err := s.sessions.Create(p)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, "could not start a session")
		return
	}
	s.m.logins.WithLabelValues("ok").Inc()
	s.log.Info("login", "user", p.Name, "role", p.Role.String(), "remote", r.RemoteAddr)
	s.setCookie(w, r, loginCookie, "", -1)
	s.setCookie(w, r, sessionCookie, id, 0)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if !s.access(w, r, session(r).Principal, oversight.AccessEvent{Action: "logout", Tenant: auth.AllTenants}) {
		return
	}
	s.sessions.Delete(s.cookie(r, sessionCookie))
	s.setCookie(w, r, sessionCookie, "", -1)
	s.log.Info("logout", "user", session(r).Principal.Name)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
