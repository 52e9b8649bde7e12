package fold

import (
	"testing"

	"github.com/auditline/auditline/enrich/event"
)

// TestHTTPStatus: LiteLLM 1.106.2's error_code is not always a status
// (docs/litellm.md §7.4 31); values as captured from the real proxy.
func TestHTTPStatus(t *testing.T) {
	for _, c := range []struct {
		e    event.Error
		want string
	}{
		{event.Error{Code: "429", Class: "RateLimitError", Normalized: "429_RATE_LIMIT_EXCEEDED"}, "429"},
		{event.Error{Code: "500", Class: "APIError", Normalized: "500_PROVIDER_INTERNAL_ERROR"}, "500"},
		{event.Error{Code: "server_error", Class: "InternalServerError", Normalized: "500_PROVIDER_INTERNAL_ERROR"}, "500"},
		{event.Error{Code: "server_error", Class: "InternalServerError"}, "500"},
		{event.Error{Code: "rate_limit_exceeded", Class: "RateLimitError"}, "429"},
		{event.Error{Code: "400", Class: "HTTPException", Normalized: "400_INVALID_REQUEST"}, "400"},
		{event.Error{Code: "weird", Class: "APIError"}, ""},
		{event.Error{}, ""},
	} {
		if got := HTTPStatus(c.e); got != c.want {
			t.Errorf("HTTPStatus(%+v) = %q, want %q", c.e, got, c.want)
		}
	}
}
