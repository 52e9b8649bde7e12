// Package dashboards serves `auditline dashboard`: the near-miss and sampling
// dashboards, the record list and one record's full detail, with login,
// roles and tenant scoping. docs/dashboards.md is the user's guide.
//
// Guarantees:
//
//   - Read-only on the data. Pages read ClickHouse through the query
//     package; the only changes a user can make — a review outcome, a burst
//     switch — are oversight events posted to ingest (package oversight), so
//     they travel the same durable path as every other event and end up in
//     the record and the archive. A POST reports success only after ingest
//     acknowledged the event, which it does only after Kafka did.
//   - A user never sees another tenant's records, whatever the URL says: the
//     principal's tenants go into every query filter, a tenant parameter
//     outside them is a 403, and a record outside them is the same 404 as a
//     record that does not exist.
//   - Every state change is a POST that needs a session, its CSRF token and
//     the right role; GETs change nothing. A bad parameter is a 400 that
//     says which and why; nothing a user sends can panic the server.
//   - Every page is a handful of bounded ClickHouse queries (aggregations,
//     LIMITed lists), so page cost does not grow with what a user clicks;
//     docs/dashboards.md has the page-load figures on 1,000,000 records.
//   - The binary is the whole site: templates, stylesheet and charts (inline
//     SVG, package chart) are embedded; pages need no JavaScript and no
//     network beyond the dashboard.
//
// Layout, for adding a page, a filter or an export: a page is a handler in
// pages.go (parse the URL's view, run the page's reads, build its model,
// render), a view model built by a pure function in models.go from what
// the reads returned, and a template in web/templates; posted forms are
// parsed, and turned into oversight events, by pure functions in forms.go.
// A URL filter is one entry in urlFilters (view.go) plus its field in view
// and query.Filter: parsing, links and the chip that removes it follow.
// Models hold chart specs (drawn by the template), so an export can reuse a
// page's model and its numbers are tested without parsing SVG.
//
// Why server-rendered HTML: a compliance dashboard is read more than it is
// played with; HTML with SVG prints, links, bookmarks and works under a CSP
// with no script at all, and there is no client bundle to keep patched.
package dashboards
