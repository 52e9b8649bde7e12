package app

import (
	"context"
	"log/slog"
	"sync"

	"github.com/auditline/auditline/sinks/archive"
)

// buildRawArchives builds one raw log per raw topic when archive.raw is
// enabled (docs/archive.md "Raw evidence").
func buildRawArchives(c *Config, set Settings) ([]*archive.Archiver, error) {
	if !c.Archive.Raw.Enabled {
		return nil, nil
	}
	ks, err := c.Archive.Raw.OpenKeyStore()
	if err != nil {
		return nil, err
	}
	log := set.Logger
	if log == nil {
		log = slog.Default()
	}
	var out []*archive.Archiver
	for _, t := range archive.RawTopics(c.Shared().Topics) {
		a, err := archive.NewRaw(c.Archive, c.Shared(), t, ks, archive.Settings{Logger: log.With("raw_topic", t)})
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// runWithRaw runs the decisions archiver and the raw logs until ctx ends or
// one of them fails; a failure stops the others.
func runWithRaw(ctx context.Context, main *archive.Archiver, raws []*archive.Archiver) error {
	if len(raws) == 0 {
		return main.Run(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(raws)+1)
	var wg sync.WaitGroup
	for i, a := range append([]*archive.Archiver{main}, raws...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = a.Run(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
