package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// WriteJSON writes r as indented JSON: the --json output, and what Compare
// and ReadReport read back.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ReadReport decodes a report that WriteJSON wrote.
func ReadReport(r io.Reader) (*Report, error) {
	var rep Report
	dec := json.NewDecoder(r)
	if err := dec.Decode(&rep); err != nil {
		return nil, fmt.Errorf("bench: decoding a report: %w", err)
	}
	if rep.System == "" {
		return nil, fmt.Errorf("bench: not a bench report (no system)")
	}
	return &rep, nil
}

// ReadReportFiles reads the reports WriteJSON wrote into the files at
// paths, in order.
func ReadReportFiles(paths ...string) ([]*Report, error) {
	reports := make([]*Report, 0, len(paths))
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		r, err := ReadReport(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// WriteJSONFile writes r with WriteJSON into a new file at path.
func WriteJSONFile(path string, r *Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := WriteJSON(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteText writes r as an aligned table for a terminal: one line per
// metric with its median, min and max over the runs.
func WriteText(w io.Writer, r *Report) error {
	fmt.Fprintf(w, "system:     %s\n", r.System)
	fmt.Fprintf(w, "durability: %s\n", r.Durability)
	fmt.Fprintf(w, "machine:    %s\n", r.Machine)
	fmt.Fprintf(w, "started:    %s\n", r.Started.Format("2006-01-02 15:04:05 UTC"))
	fmt.Fprintf(w, "params:     %s\n\n", formatParams(r.Params))
	t := table{right: []bool{false, false, true, true, true, false, false}}
	t.add("scenario", "metric", "median", "min", "max", "unit", "better")
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			t.note(s.Name, "skipped: "+s.Skipped)
			continue
		}
		for _, name := range metricOrder(s) {
			m := s.Metrics[name]
			t.add(s.Name, name, formatValue(m, m.Median), formatValue(m, m.Min), formatValue(m, m.Max), m.Unit, betterWord(m.Better))
		}
	}
	return t.write(w)
}

// WriteCSV writes r as CSV, one row per metric: system, scenario, metric,
// unit, better, median, min, max and the runs separated by ";". A skipped
// scenario is one row with the reason in the metric column's place
// (metric "skipped", unit empty).
func WriteCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"system", "scenario", "metric", "unit", "better", "median", "min", "max", "runs"})
	for _, s := range r.Scenarios {
		if s.Skipped != "" {
			_ = cw.Write([]string{r.System, s.Name, "skipped", "", "", "", "", "", s.Skipped})
			continue
		}
		for _, name := range metricOrder(s) {
			m := s.Metrics[name]
			runs := make([]string, len(m.Runs))
			for i, v := range m.Runs {
				runs[i] = csvValue(v)
			}
			_ = cw.Write([]string{r.System, s.Name, name, m.Unit, m.Better,
				csvValue(m.Median), csvValue(m.Min), csvValue(m.Max), strings.Join(runs, ";")})
		}
	}
	cw.Flush()
	return cw.Error()
}

// Ratio compares Spool's metric to a peer's so that a ratio above 1 always
// means Spool did better: spool/peer for "higher" metrics, peer/spool for
// "lower" ones, on the medians. ok is false for an informational metric
// (neither direction), metrics that disagree on direction, or a zero
// divisor.
func Ratio(spool, peer Metric) (ratio float64, ok bool) {
	if spool.Better != peer.Better {
		return 0, false
	}
	switch spool.Better {
	case Higher:
		if peer.Median == 0 {
			return 0, false
		}
		return spool.Median / peer.Median, true
	case Lower:
		if spool.Median == 0 {
			return 0, false
		}
		return peer.Median / spool.Median, true
	}
	return 0, false
}

// Compare writes a table of every scenario metric of spool next to each
// peer's, with the ratio described at Ratio (>1: Spool did better, in both
// directions). A metric a report lacks, and a scenario it skipped, show as
// "-".
func Compare(w io.Writer, spool *Report, peers ...*Report) error {
	fmt.Fprintf(w, "Spool (%s) against %s.\n", spool.System, peerNames(peers))
	fmt.Fprintln(w, "Medians over the runs. ratio > 1 means Spool did better: spool/peer for")
	fmt.Fprintln(w, "higher-is-better metrics, peer/spool for lower-is-better ones; '-' where")
	fmt.Fprintln(w, "no ratio applies (informational metric, missing figure, division by 0).")
	fmt.Fprintf(w, "durability: %s: %s\n", spool.System, spool.Durability)
	for _, p := range peers {
		fmt.Fprintf(w, "            %s: %s\n", p.System, p.Durability)
	}
	fmt.Fprintln(w)
	t := table{right: []bool{false, false, false, false, true}}
	head := []string{"scenario", "metric", "unit", "better", spool.System}
	for _, p := range peers {
		head = append(head, p.System, "ratio")
		t.right = append(t.right, true, true)
	}
	t.add(head...)
	for _, s := range spool.Scenarios {
		if s.Skipped != "" {
			t.note(s.Name, "skipped: "+s.Skipped)
			continue
		}
		for _, name := range metricOrder(s) {
			m := s.Metrics[name]
			row := []string{s.Name, name, m.Unit, betterWord(m.Better), formatValue(m, m.Median)}
			for _, p := range peers {
				pm, ok := p.metric(s.Name, name)
				if !ok {
					row = append(row, "-", "-")
					continue
				}
				r, ok := Ratio(m, pm)
				rs := "-"
				if ok {
					rs = strconv.FormatFloat(r, 'f', 2, 64) + "x"
				}
				row = append(row, formatValue(pm, pm.Median), rs)
			}
			t.add(row...)
		}
	}
	return t.write(w)
}

// metric returns the named metric of a scenario the report ran.
func (r *Report) metric(scenario, name string) (Metric, bool) {
	for _, s := range r.Scenarios {
		if s.Name == scenario && s.Skipped == "" {
			m, ok := s.Metrics[name]
			return m, ok
		}
	}
	return Metric{}, false
}

// metricOrder lists a scenario's metrics: those Run knows in its order,
// then any others (from a report of another version) by name.
func metricOrder(s ScenarioResult) []string {
	var out []string
	for _, sc := range scenarioTable {
		if sc.name != s.Name {
			continue
		}
		for _, spec := range sc.metrics {
			if _, ok := s.Metrics[spec.Name]; ok {
				out = append(out, spec.Name)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Metrics)) {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func peerNames(peers []*Report) string {
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = p.System
	}
	if len(names) == 0 {
		return "no peer"
	}
	return strings.Join(names, ", ")
}

func formatParams(p map[string]string) string {
	keys := slices.Sorted(maps.Keys(p))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if k == "payload" || k == "handler" || k == "percentiles" {
			continue // said in prose by the command's help
		}
		parts = append(parts, k+"="+p[k])
	}
	return strings.Join(parts, " ")
}

// formatValue prints a figure of m with precision that suits its size.
func formatValue(m Metric, v float64) string {
	if m.Unit == UnitCount {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	switch a := max(v, -v); {
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func csvValue(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func betterWord(b string) string {
	if b == "" {
		return "info"
	}
	return b
}

// table aligns rows of cells in columns two spaces apart; right marks the
// columns aligned to the right (figures). A note row is a first cell and
// free text that spans the rest.
type table struct {
	right []bool
	rows  [][]string
	notes map[int]bool
}

func (t *table) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) note(first, text string) {
	if t.notes == nil {
		t.notes = map[int]bool{}
	}
	t.notes[len(t.rows)] = true
	t.rows = append(t.rows, []string{first, text})
}

func (t *table) write(w io.Writer) error {
	var width []int
	for i, row := range t.rows {
		for j, c := range row {
			if t.notes[i] && j > 0 {
				break
			}
			if j >= len(width) {
				width = append(width, 0)
			}
			width[j] = max(width[j], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for i, row := range t.rows {
		var line strings.Builder
		for j, c := range row {
			if j > 0 {
				line.WriteString("  ")
			}
			pad := 0
			if !(t.notes[i] && j > 0) {
				pad = width[j] - utf8.RuneCountInString(c)
			}
			if j < len(t.right) && t.right[j] {
				line.WriteString(strings.Repeat(" ", pad) + c)
			} else {
				line.WriteString(c + strings.Repeat(" ", pad))
			}
		}
		b.WriteString(strings.TrimRight(line.String(), " ") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
