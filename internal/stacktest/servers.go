package stacktest

import (
	"errors"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/auditline/auditline/deploy/testenv"
)

// Servers are where the Kafka broker(s), ClickHouse and the S3 server are.
type Servers struct {
	Kafka      []string
	ClickHouse string // host:port of the native protocol
	S3         testenv.S3Endpoint
	private    map[string]*testenv.Private
}

// Shared returns the shared local stack's servers (deploy/local/start.sh,
// .data/env). A test without them is skipped, or failed under
// AUDITLINE_REQUIRE_SERVERS=1.
func Shared(t testing.TB) Servers {
	t.Helper()
	return Servers{Kafka: testenv.Kafka(t), ClickHouse: testenv.ClickHouse(t), S3: testenv.S3(t)}
}

// PrivateServers starts a private instance of each named server ("kafka",
// "clickhouse", "minio") for this test alone (free ports, a temporary data
// folder, stopped when the test ends); the others are the shared ones. A
// test may stop, restart or freeze a private server (Private).
func PrivateServers(t testing.TB, names ...string) Servers {
	t.Helper()
	s := Servers{S3: testenv.S3(t), private: map[string]*testenv.Private{}}
	for _, n := range names {
		s.private[n] = testenv.StartPrivate(t, n)
	}
	if p := s.private["kafka"]; p != nil {
		s.Kafka = []string{p.Addr}
	} else {
		s.Kafka = testenv.Kafka(t)
	}
	if p := s.private["clickhouse"]; p != nil {
		s.ClickHouse = p.Addr
	} else {
		s.ClickHouse = testenv.ClickHouse(t)
	}
	if p := s.private["minio"]; p != nil {
		s.S3.Endpoint, s.S3.Secure = p.Addr, false
	}
	return s
}

// ServersFromEnv reads the shared stack's servers from the environment
// (AUDITLINE_KAFKA, AUDITLINE_CLICKHOUSE, AUDITLINE_S3, AUDITLINE_S3_BUCKET),
// for programs that are not tests.
func ServersFromEnv() (Servers, error) {
	k, ch, s3 := os.Getenv("AUDITLINE_KAFKA"), os.Getenv("AUDITLINE_CLICKHOUSE"), os.Getenv("AUDITLINE_S3")
	if k == "" || ch == "" || s3 == "" || os.Getenv("AUDITLINE_S3_BUCKET") == "" {
		return Servers{}, errors.New("AUDITLINE_KAFKA, AUDITLINE_CLICKHOUSE, AUDITLINE_S3 and AUDITLINE_S3_BUCKET must be set: deploy/local/start.sh all && source .data/env")
	}
	u, err := url.Parse(s3)
	if err != nil || u.User == nil {
		return Servers{}, errors.New("AUDITLINE_S3 must look like http://ACCESS:SECRET@host:port")
	}
	secret, _ := u.User.Password()
	return Servers{Kafka: strings.Split(k, ","), ClickHouse: ch, S3: testenv.S3Endpoint{Endpoint: u.Host, Secure: u.Scheme == "https",
		AccessKey: u.User.Username(), SecretKey: secret, Bucket: os.Getenv("AUDITLINE_S3_BUCKET")}}, nil
}

// Private returns the private server of that name, or nil when it is the
// shared one.
func (s Servers) Private(name string) *testenv.Private { return s.private[name] }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
