package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spoolq/spool/internal/bench"
)

// table prints a Markdown table of the medians of every report, one
// column per report (for docs/benchmarks.md).
func table(args []string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		fmt.Fprintln(stderr, "usage: peers table REPORT.json...")
		return errUsage
	}
	reports, err := bench.ReadReportFiles(args...)
	if err != nil {
		return err
	}
	head := "| scenario | metric |"
	sep := "|---|---|"
	for _, r := range reports {
		head += " " + r.System + " |"
		sep += "---:|"
	}
	fmt.Fprintln(stdout, head)
	fmt.Fprintln(stdout, sep)
	for _, row := range tableRows(reports) {
		line := fmt.Sprintf("| %s | %s |", row.scenario, row.metric)
		for _, r := range reports {
			line += " " + cell(r, row.scenario, row.metric) + " |"
		}
		fmt.Fprintln(stdout, line)
	}
	return nil
}

type tableRow struct {
	scenario, metric string
}

// tableRows lists every scenario and metric of the reports: scenarios in
// the order of bench.Scenarios, metrics in the order of the first report
// that has them (sorted by name within a report).
func tableRows(reports []*bench.Report) []tableRow {
	var rows []tableRow
	for _, sc := range bench.Scenarios {
		for _, r := range reports {
			for _, s := range r.Scenarios {
				if s.Name != sc || s.Skipped != "" {
					continue
				}
				names := make([]string, 0, len(s.Metrics))
				for name := range s.Metrics {
					names = append(names, name)
				}
				slices.Sort(names)
				for _, name := range names {
					row := tableRow{sc, name + " (" + s.Metrics[name].Unit + ")"}
					if !slices.Contains(rows, row) {
						rows = append(rows, row)
					}
				}
			}
		}
	}
	return rows
}

// cell is the median of one metric of r ("skipped" or "-" when absent).
func cell(r *bench.Report, scenario, metric string) string {
	name, _, _ := strings.Cut(metric, " (")
	for _, s := range r.Scenarios {
		if s.Name != scenario {
			continue
		}
		if s.Skipped != "" {
			return "skipped"
		}
		m, ok := s.Metrics[name]
		if !ok {
			return "-"
		}
		v := m.Median
		switch {
		case v >= 100:
			return strconv.FormatFloat(v, 'f', 0, 64)
		case v >= 10:
			return strconv.FormatFloat(v, 'f', 1, 64)
		default:
			return strconv.FormatFloat(v, 'f', 2, 64)
		}
	}
	return "-"
}
