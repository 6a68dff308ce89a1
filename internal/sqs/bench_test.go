package sqs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/server"
)

// BenchmarkRoundTrip moves messages through a real server on the embedded
// store, 10 at a time (SQS's batch limit), with several producer-consumers
// at once: each sends a batch, receives up to 10 and deletes what it got.
// "sqs" goes through the SQS API with the AWS Go SDK
// (SendMessageBatch + ReceiveMessage + DeleteMessageBatch); "spool" through
// Spool's own API with its Go SDK (EnqueueBatchIDs + Lease + Ack), on the
// same server. Producer-consumers: GOMAXPROCS times the parallelism. It
// reports messages/s (sent, received and deleted).
func BenchmarkRoundTrip(b *testing.B) {
	const batch = 10
	for _, api := range []string{"sqs", "spool"} {
		for _, par := range []int{1, 8} {
			b.Run(fmt.Sprintf("api=%s/parallelism=%d", api, par), func(b *testing.B) {
				e := start(b, server.Config{DataDir: b.TempDir()})
				ctx := context.Background()
				url := ""
				if api == "sqs" {
					out, err := e.c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("bench")})
					require.NoError(b, err)
					url = *out.QueueUrl
				}
				body := `{"order":12345,"items":["a","b","c"],"note":"a message of about a hundred bytes, as many are"}`
				var moved atomic.Int64
				round := func() error {
					if api == "sqs" {
						entries := make([]types.SendMessageBatchRequestEntry, batch)
						for i := range entries {
							entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(body)}
						}
						if _, err := e.c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries}); err != nil {
							return err
						}
						got, err := e.c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: batch, WaitTimeSeconds: 1})
						if err != nil {
							return err
						}
						if len(got.Messages) == 0 {
							return nil
						}
						del := make([]types.DeleteMessageBatchRequestEntry, len(got.Messages))
						for i, m := range got.Messages {
							del[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: m.ReceiptHandle}
						}
						if _, err := e.c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: del}); err != nil {
							return err
						}
						moved.Add(int64(len(got.Messages)))
						return nil
					}
					reqs := make([]spool.EnqueueRequest, batch)
					for i := range reqs {
						reqs[i] = spool.EnqueueRequest{Type: "sqs", Payload: json.RawMessage(strconv.Quote(body))}
					}
					if _, err := e.api.EnqueueBatchIDs(ctx, "bench", reqs); err != nil {
						return err
					}
					wait := spool.Duration(time.Second)
					jobs, err := e.api.Lease(ctx, spool.LeaseRequest{Queues: []string{"bench"}, Max: batch, Wait: &wait})
					if err != nil {
						return err
					}
					if len(jobs) == 0 {
						return nil
					}
					acks := make([]spool.Ack, len(jobs))
					for i, j := range jobs {
						acks[i] = spool.Ack{ID: j.ID, Token: j.Lease.Token, Outcome: spool.OutcomeComplete}
					}
					if _, err := e.api.Ack(ctx, acks); err != nil {
						return err
					}
					moved.Add(int64(len(jobs)))
					return nil
				}
				b.SetParallelism(par)
				b.ResetTimer()
				start := time.Now()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := round(); err != nil {
							b.Error(err)
							return
						}
					}
				})
				el := time.Since(start)
				b.StopTimer()
				b.ReportMetric(float64(moved.Load())/el.Seconds(), "msgs/s")
			})
		}
	}
}
