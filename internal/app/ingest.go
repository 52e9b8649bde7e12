package app

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/auditline/auditline/ingest"
)

// reloadingIngest applies ingest.auth from the configuration again on each
// SIGHUP, so tokens and HMAC secrets rotate without a restart (the
// listener, Kafka and every other setting stay as they started).
type reloadingIngest struct {
	*ingest.Server
	reload func() (*Config, error)
	log    *slog.Logger
}

func (r *reloadingIngest) Run(ctx context.Context) error {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				cfg, err := r.reload()
				if err == nil {
					err = r.ReloadAuth(cfg.Ingest.Auth)
				}
				if err != nil {
					r.log.Error("SIGHUP: credentials not reloaded; the current ones stay in force", "err", err)
					continue
				}
				r.log.Info("SIGHUP: credentials reloaded", "tokens", len(cfg.Ingest.Auth.Tokens))
			}
		}
	}()
	return r.Server.Run(ctx)
}
