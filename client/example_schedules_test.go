package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
)

// A schedule enqueues its job at every firing of a cron expression; a
// worker leases the jobs like any other. Each job's idempotency key names
// its schedule and fire time.
func ExampleClient_PutSchedule() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, err := client.New(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	sc, err := c.PutSchedule(ctx, "heartbeat", spool.ScheduleRequest{
		Cron: "@every 1s", // or "30 2 * * *" with Timezone "America/New_York", "*/10 * * * * *", "@hourly"...
		Job: spool.ScheduleJob{Queue: "ops", EnqueueRequest: spool.EnqueueRequest{
			Type: "ping", Payload: json.RawMessage(`{"from":"cron"}`),
		}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("schedule:", sc.Name, sc.Cron, sc.Timezone, "missed="+sc.Missed)

	wait, lease := spool.Duration(5*time.Second), spool.Duration(time.Minute)
	jobs, err := c.Lease(ctx, spool.LeaseRequest{Queues: []string{"ops"}, Max: 1, Wait: &wait, Lease: &lease})
	if err != nil || len(jobs) == 0 {
		log.Fatal("no job: ", err)
	}
	fmt.Println("job:", jobs[0].Type, string(jobs[0].Payload), strings.HasPrefix(jobs[0].IdempotencyKey, "spool-schedule:heartbeat:"))

	if _, err := c.PauseSchedule(ctx, "heartbeat"); err != nil {
		log.Fatal(err)
	}
	sc, err = c.Schedule(ctx, "heartbeat")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("paused:", sc.Paused, "fired:", sc.FiredCount >= 1)
	// Output:
	// schedule: heartbeat @every 1s UTC missed=skip
	// job: ping {"from":"cron"} true
	// paused: true fired: true
}
