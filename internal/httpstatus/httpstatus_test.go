package httpstatus

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestWriter(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(w http.ResponseWriter)
		want  int
	}{
		{"nothing written", func(http.ResponseWriter) {}, 0},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("x")) }, 200},
		{"explicit", func(w http.ResponseWriter) { w.WriteHeader(503) }, 503},
		{"first wins", func(w http.ResponseWriter) { w.WriteHeader(404); w.WriteHeader(500) }, 404},
		{"header then body", func(w http.ResponseWriter) { w.WriteHeader(201); _, _ = w.Write([]byte("x")) }, 201},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			w := New(rec)
			tc.serve(w)
			if w.Code() != tc.want || w.Unwrap() != rec {
				t.Fatalf("code %d, want %d", w.Code(), tc.want)
			}
		})
	}
}
