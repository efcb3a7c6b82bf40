package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/atrium-ml/atrium/client"
	"github.com/atrium-ml/atrium/internal/data/online"
	"github.com/atrium-ml/atrium/internal/data/retrieval"
	"github.com/atrium-ml/atrium/internal/spec"
)

func newMaterializeCmd(e *env) *cobra.Command {
	var (
		end  string
		full bool
	)
	cmd := &cobra.Command{
		Use:   "materialize --end TS [SET...]",
		Short: "Write the latest feature rows up to --end into the online store",
		Long: `materialize writes, for every key of each feature set (all sets when none is
named), its latest row with event time <= --end and within the set's ttl of
--end into the online store. It is incremental: each set resumes after the end
it was last materialized up to (kept in the metadata DB), and a row never
replaces a newer one already in the store. --full reads each set from end - ttl
again, to pick up rows a backfill added before the previous end.

--end is an RFC 3339 time (2026-11-25T06:00:00Z), 2026-11-25 06:00:00 or
2026-11-25T06:00:00 (UTC), a date (2026-11-25, midnight UTC) or "now".`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if end == "" {
				return usagef("--end is required: %s", spec.TimeFormats)
			}
			endTS, err := spec.ParseTime(end, time.Now())
			if err != nil {
				return usagef("--end: %v", err)
			}
			l, err := loadCatalog(e)
			if err != nil {
				return err
			}
			db, err := e.Meta()
			if err != nil {
				return err
			}
			keyTypes, err := retrieval.LoadKeyTypes(e.ctx, db)
			if err != nil {
				return err
			}
			defs, err := retrieval.DefinitionsFromSpec(l.Features, keyTypes)
			if err != nil {
				return err
			}
			sets, err := pickSets(defs.Sets, args)
			if err != nil {
				return err
			}
			eng, err := e.Offline(l.Features)
			if err != nil {
				return err
			}
			p, err := e.Project()
			if err != nil {
				return err
			}
			var results []retrieval.MaterializeResult
			var runErr error
			store, err := e.Online()
			switch {
			case errors.Is(err, online.ErrInUse):
				// `atrium serve` holds the embedded store: materialize through it.
				e.log.Info("online store in use by a server; materializing through it", "server", p.Server.Addr)
				results, runErr = materializeViaServer(e, p.Server.Addr, endTS, setNamesOf(sets), full)
			case err != nil:
				return err
			default:
				m := retrieval.Materializer{Store: store, Meta: db, Engine: eng, Full: full, Progress: e.stderr, Logger: e.log}
				results, runErr = m.Materialize(e.ctx, sets, endTS)
			}
			if e.output == "json" {
				if results == nil {
					results = []retrieval.MaterializeResult{}
				}
				if err := json.NewEncoder(e.stdout).Encode(results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					printMaterialized(e, r)
				}
			}
			return runErr
		},
	}
	cmd.Flags().StringVar(&end, "end", "", "materialize rows up to this time (2026-11-25T06:00:00Z, 2026-11-25 06:00:00 (UTC), 2026-11-25 or now)")
	cmd.Flags().BoolVar(&full, "full", false, "ignore where each set was materialized up to; read from end - ttl")
	return cmd
}

// pickSets returns the sets named (all of them when none is), in the order named.
func pickSets(all []retrieval.SetDef, names []string) ([]retrieval.SetDef, error) {
	if len(names) == 0 {
		return all, nil
	}
	var out []retrieval.SetDef
	var unknown []string
	for _, n := range names {
		found := false
		for _, s := range all {
			if s.Name == n {
				out = append(out, s)
				found = true
				break
			}
		}
		if !found {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		known := make([]string, len(all))
		for i, s := range all {
			known[i] = s.Name
		}
		return nil, usagef("unknown feature set %s: the catalog has %s", strings.Join(unknown, ", "), strings.Join(known, ", "))
	}
	return out, nil
}

func printMaterialized(e *env, r retrieval.MaterializeResult) {
	fmt.Fprintln(e.stdout, r.String())
}

func setNamesOf(sets []retrieval.SetDef) []string {
	out := make([]string, len(sets))
	for i, s := range sets {
		out[i] = s.Name
	}
	return out
}

// materializeViaServer asks the server at addr to materialize (POST
// /materialize-incremental): with an embedded online store, the process that
// holds it open has to do the writing.
func materializeViaServer(e *env, addr string, end time.Time, sets []string, full bool) ([]retrieval.MaterializeResult, error) {
	c, err := client.New("http://"+addr, client.WithHTTPClient(&http.Client{}))
	if err != nil {
		return nil, err
	}
	got, err := c.MaterializeIncremental(e.ctx, client.MaterializeRequest{End: end, Sets: sets, Full: full})
	out := make([]retrieval.MaterializeResult, len(got))
	for i, r := range got {
		out[i] = retrieval.MaterializeResult{Set: r.Set, End: r.End, Rows: r.Rows, Skipped: r.Skipped, NoData: r.NoData,
			Duration: time.Duration(r.DurationSeconds * float64(time.Second))}
		if r.From != nil {
			out[i].From = *r.From
		}
	}
	if err != nil {
		return out, fmt.Errorf("materialize through the server at %s (it holds the online store open): %w", addr, err)
	}
	return out, nil
}
