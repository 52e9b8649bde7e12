package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/auditline/auditline/privacy/pseudonym"
)

func init() {
	register(command{"pseudonym", "print the pseudonym of an identity value, to look a subject up in pseudonymised records", runPseudonym})
}

// runPseudonym prints, for each value, the pseudonym enrich writes in its
// place (privacy/pseudonym), under the configured key id and secret.
func runPseudonym(_ context.Context, args []string) error {
	fs := flag.NewFlagSet("pseudonym", flag.ContinueOnError)
	configPath := configFlag(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: auditline pseudonym [--config FILE] VALUE...
       auditline pseudonym [--config FILE] -      (values from stdin, one per line)

Prints the pseudonym of each value, one per line, as enrich writes it in the
pseudonymised identity fields (enrich.content.pseudonymise): query ClickHouse
or the archive for it, e.g.
  SELECT … FROM decision_records WHERE user_email = 'ps:k1:…' OR subject = 'ps:k1:…'
The same value has the same pseudonym in every field. It uses the key id and
secret of the configuration (the secret from the file or
AUDITLINE_ENRICH_CONTENT_PSEUDONYMISE_SECRET); for records made under an
older key, set AUDITLINE_ENRICH_CONTENT_PSEUDONYMISE_KEY_ID and _SECRET to
that key. Values on the command line end up in shell history: prefer "-".

Flags:
`)
		fs.PrintDefaults()
	}
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	return printPseudonyms(os.Stdout, os.Stdin, cfg.Enrich.Content.Pseudonymise, fs.Args())
}

// printPseudonyms writes the pseudonym of each value under pc's key (its
// field list does not matter), one per line; values "-" alone: one per line
// of in.
func printPseudonyms(out io.Writer, in io.Reader, pc pseudonym.Config, values []string) error {
	pc.Fields = []string{pseudonym.Fields[0]}
	if err := pc.Validate("enrich.content.pseudonymise."); err != nil {
		return fmt.Errorf("no pseudonymisation key configured:\n%w", err)
	}
	p := pseudonym.New(pc)
	w := bufio.NewWriter(out)
	if len(values) == 1 && values[0] == "-" {
		sc := bufio.NewScanner(in)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintln(w, p.Of(sc.Text()))
		}
		if err := sc.Err(); err != nil {
			return fmt.Errorf("stdin: %w", err)
		}
		return w.Flush()
	}
	for _, v := range values {
		fmt.Fprintln(w, p.Of(v))
	}
	return w.Flush()
}
