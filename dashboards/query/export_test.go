package query

// SetMaxGroups lowers the group bound of NearMiss so tests reach its
// fan-out form.
func SetMaxGroups(c *ClickHouse, n int) { c.maxGroups = n }
