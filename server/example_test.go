package server_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"

	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/server"
)

// A Go program embeds the broker: it opens the store in a data directory,
// serves the API on a listener of its own, and talks to it with the SDK
// like any other program would. Cancelling Serve's context drains and
// stops the server; Close releases the store.
func Example() {
	dir, err := os.MkdirTemp("", "spool-embedded-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx, stop := context.WithCancel(context.Background())
	srv, err := server.New(ctx, server.Config{
		DataDir:  dir,
		Defaults: server.QueueDefaults{MaxAttempts: 5},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	c, err := client.New("http://" + ln.Addr().String())
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	job, err := c.Push(ctx, "reports", "build", map[string]int{"month": 11})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(job.State, job.MaxAttempts)

	stop()
	if err := <-served; err != nil {
		log.Fatal(err)
	}
	// Output: ready 5
}
