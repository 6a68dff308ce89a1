package sqs_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/testproc"
	"github.com/spoolq/spool/server"
)

// TestTwoNodes: two servers sharing one PostgreSQL schema serve one set
// of SQS queues: a receive on one node (long-polling, if it comes first)
// gets a message sent through the other, and a delete there finishes it.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SPOOL_TEST_POSTGRES_URL is not set under CI: run the tests through scripts/with-postgres")
		}
		t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
	}
	u, _ := testproc.FreshSchema(t, base, "sqs2_")
	a := start(t, server.Config{Store: u})
	b := start(t, server.Config{Store: u})
	ctx := t.Context()

	url := a.create("Shared", nil)
	out, err := b.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("Shared")})
	require.NoError(t, err)
	urlB := *out.QueueUrl

	got := make(chan []types.Message, 1)
	go func() {
		r, err := b.c.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(urlB), WaitTimeSeconds: 20})
		if err != nil {
			got <- nil
			return
		}
		got <- r.Messages
	}()
	sent := a.send(url, "across nodes")
	msgs := <-got
	require.Len(t, msgs, 1)
	require.Equal(t, *sent.MessageId, *msgs[0].MessageId)
	_, err = b.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(urlB), ReceiptHandle: msgs[0].ReceiptHandle})
	require.NoError(t, err)
	require.EqualValues(t, 0, a.depth("s.hared"))
}
