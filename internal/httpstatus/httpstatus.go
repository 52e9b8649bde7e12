// Package httpstatus records the status code a handler answered with, for
// the request metrics of ingest and the dashboards.
package httpstatus

import "net/http"

// Writer is an http.ResponseWriter that remembers the first status code
// written (200 once a body is written without one).
type Writer struct {
	http.ResponseWriter
	code int
}

// New wraps w.
func New(w http.ResponseWriter) *Writer { return &Writer{ResponseWriter: w} }

// WriteHeader records code, if it is the first, and passes it on.
func (w *Writer) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Code returns the status written so far; 0 when nothing was written.
func (w *Writer) Code() int { return w.code }
