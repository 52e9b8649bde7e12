package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/auditline/auditline/dashboards/auth"
)

func init() {
	register(command{"passwd", "print an argon2id password hash (read from stdin) for dashboard.auth.users", runPasswd})
}

// runPasswd prints an argon2id hash of a password read from stdin,
// for dashboard.auth.users[].password_hash.
func runPasswd(_ context.Context, args []string) error {
	if len(args) != 0 {
		fmt.Fprintln(os.Stderr, "Usage: auditline passwd < password-file\n\nReads one password line from stdin and prints its argon2id hash for dashboard.auth.users[].password_hash.")
		if args[0] == "-h" || args[0] == "--help" {
			return nil
		}
		return errUsage
	}
	if fi, err := os.Stdin.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		fmt.Fprint(os.Stderr, "password (echoed; prefer a pipe): ")
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return fmt.Errorf("read password: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if pw == "" {
		return errors.New("empty password")
	}
	h, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	fmt.Println(h)
	return nil
}
