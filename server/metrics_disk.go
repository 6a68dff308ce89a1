package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/spoolq/spool/internal/diskspace"
)

// diskCollector exports the free space of the data directory's volume and
// its low-water mark, from the guard's latest reading.
type diskCollector struct {
	g                *diskspace.Guard
	free, total, low *prometheus.Desc
}

func newDiskCollector(g *diskspace.Guard) *diskCollector {
	return &diskCollector{g: g,
		free:  prometheus.NewDesc("spool_disk_free_bytes", "Free space of the data directory's volume.", nil, nil),
		total: prometheus.NewDesc("spool_disk_size_bytes", "Size of the data directory's volume.", nil, nil),
		low:   prometheus.NewDesc("spool_disk_free_mark_bytes", "Free-space low-water mark: below it enqueues and publishes are refused (disk_full).", nil, nil),
	}
}

func (c *diskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.free
	ch <- c.total
	ch <- c.low
}

func (c *diskCollector) Collect(ch chan<- prometheus.Metric) {
	u, mark, err := c.g.Usage()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.free, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.free, prometheus.GaugeValue, float64(u.Free))
	ch <- prometheus.MustNewConstMetric(c.total, prometheus.GaugeValue, float64(u.Total))
	ch <- prometheus.MustNewConstMetric(c.low, prometheus.GaugeValue, float64(mark))
}
