package sqs_test

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/spoolq/spool"
	"github.com/spoolq/spool/client"
	"github.com/spoolq/spool/internal/diskspace"
	"github.com/spoolq/spool/internal/testproc"
	"github.com/spoolq/spool/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// env is a real Spool server with its HTTP API and its SQS API served on
// ports of their own, an AWS SDK client of the SQS API and a Spool SDK
// client of the HTTP API.
type env struct {
	t      testing.TB
	srv    *server.Server
	sqsURL string
	sqsHC  *http.Client
	api    *client.Client
	c      *awssqs.Client
	// throttled counts the SQS answers refused for a full queue.
	throttled atomic.Int64
}

// eachStore runs fn against a server on the embedded store and, with a
// PostgreSQL server (scripts/with-postgres), on a fresh schema of it.
func eachStore(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Run("Embedded", func(t *testing.T) {
		t.Parallel()
		fn(t, start(t, server.Config{DataDir: t.TempDir()}))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		base := os.Getenv("SPOOL_TEST_POSTGRES_URL")
		if base == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("SPOOL_TEST_POSTGRES_URL is not set under CI: run the tests through scripts/with-postgres")
			}
			t.Skip("SPOOL_TEST_POSTGRES_URL is not set; scripts/with-postgres starts a throwaway PostgreSQL")
		}
		u, _ := testproc.FreshSchema(t, base, "sqs_")
		fn(t, start(t, server.Config{Store: u}))
	})
}

func start(t testing.TB, cfg server.Config) *env {
	t.Helper()
	s, err := server.New(context.Background(), cfg)
	require.NoError(t, err)
	e := &env{t: t, srv: s}
	sq := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		s.SQSHandler().ServeHTTP(rec, r)
		if rec.status == http.StatusServiceUnavailable {
			e.throttled.Add(1)
		}
	}))
	api := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		s.Drain()
		sq.Close()
		api.Close()
		require.NoError(t, s.Close())
	})
	e.sqsURL, e.sqsHC = sq.URL, sq.Client()
	e.api, err = client.New(api.URL, client.WithTimeout(30*time.Second))
	require.NoError(t, err)
	t.Cleanup(e.api.Close)
	e.c = e.sdk(1)
	return e
}

// sdk returns an AWS SDK client that makes up to attempts attempts per
// call, backing off at most 20ms between them.
func (e *env) sdk(attempts int) *awssqs.Client {
	return awssqs.New(awssqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.sqsURL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSPOOLTEST", "not-checked-in-open-mode", ""),
		HTTPClient:   e.sqsHC,
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = attempts
			o.MaxBackoff = 20 * time.Millisecond
			o.RateLimiter = ratelimit.None
		}),
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (e *env) create(name string, attrs map[string]string) string {
	e.t.Helper()
	out, err := e.c.CreateQueue(e.t.Context(), &awssqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	require.NoError(e.t, err)
	return *out.QueueUrl
}

func (e *env) send(url, body string) *awssqs.SendMessageOutput {
	e.t.Helper()
	out, err := e.c.SendMessage(e.t.Context(), &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)})
	require.NoError(e.t, err)
	return out
}

func (e *env) receive(url string, n, wait, vis int32) []types.Message {
	e.t.Helper()
	out, err := e.c.ReceiveMessage(e.t.Context(), &awssqs.ReceiveMessageInput{
		QueueUrl:                    aws.String(url),
		MaxNumberOfMessages:         n,
		WaitTimeSeconds:             wait,
		VisibilityTimeout:           vis,
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		MessageAttributeNames:       []string{"All"},
	})
	require.NoError(e.t, err)
	return out.Messages
}

// depth is the queue's jobs not yet finished, as Spool's API tells.
func (e *env) depth(spoolQueue string) int64 {
	e.t.Helper()
	q, err := e.api.Queue(e.t.Context(), spoolQueue)
	if errors.Is(err, spool.ErrNotFound) {
		return 0
	}
	require.NoError(e.t, err)
	return q.Depth
}

func code(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	return ae.ErrorCode()
}

func TestSQS(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, e *env) {
		t.Run("QueueActions", func(t *testing.T) { testQueueActions(t, e) })
		t.Run("SendReceiveDelete", func(t *testing.T) { testSendReceiveDelete(t, e) })
		t.Run("VisibilityAndRedelivery", func(t *testing.T) { testVisibility(t, e) })
		t.Run("Redrive", func(t *testing.T) { testRedrive(t, e) })
		t.Run("FIFO", func(t *testing.T) { testFIFO(t, e) })
		t.Run("LongPoll", func(t *testing.T) { testLongPoll(t, e) })
		t.Run("Batches", func(t *testing.T) { testBatches(t, e) })
		t.Run("BackPressure", func(t *testing.T) { testBackPressure(t, e) })
		t.Run("BadInput", func(t *testing.T) { testBadInput(t, e) })
		t.Run("CrossAPI", func(t *testing.T) { testCrossAPI(t, e) })
	})
}

func testQueueActions(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("Reports", map[string]string{"VisibilityTimeout": "45", "DelaySeconds": "0"})
	require.Equal(t, e.sqsURL+"/000000000000/Reports", url)
	// The Spool queue of an upper-case name.
	info, err := e.api.Queue(ctx, "r.eports")
	require.NoError(t, err)
	require.Equal(t, spool.QueueConfig{}.DeadLetterQueue, (*string)(nil))
	require.Equal(t, "45", info.Config.Attributes["sqs.attr.VisibilityTimeout"])

	// Same attributes again: the same queue; different ones: refused.
	require.Equal(t, url, e.create("Reports", map[string]string{"VisibilityTimeout": "45"}))
	_, err = e.c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("Reports"), Attributes: map[string]string{"VisibilityTimeout": "46"}})
	var exists *types.QueueNameExists
	require.ErrorAs(t, err, &exists)
	require.Equal(t, "QueueAlreadyExists", code(t, err))

	got, err := e.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("Reports")})
	require.NoError(t, err)
	require.Equal(t, url, *got.QueueUrl)
	_, err = e.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("reports")})
	var dne *types.QueueDoesNotExist
	require.ErrorAs(t, err, &dne, "names are case-sensitive")
	require.Equal(t, "AWS.SimpleQueueService.NonExistentQueue", code(t, err))

	e.create("Reports2", nil)
	list, err := e.c.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("Reports")})
	require.NoError(t, err)
	require.Equal(t, []string{url, url + "2"}, list.QueueUrls)
	page, err := e.c.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("Reports"), MaxResults: aws.Int32(1)})
	require.NoError(t, err)
	require.Equal(t, []string{url}, page.QueueUrls)
	require.NotNil(t, page.NextToken)
	page, err = e.c.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("Reports"), MaxResults: aws.Int32(1), NextToken: page.NextToken})
	require.NoError(t, err)
	require.Equal(t, []string{url + "2"}, page.QueueUrls)

	_, err = e.c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"MaximumMessageSize": "2048", "ReceiveMessageWaitTimeSeconds": "1"}})
	require.NoError(t, err)
	attrs, err := e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	require.NoError(t, err)
	require.Equal(t, "arn:aws:sqs:us-east-1:000000000000:Reports", attrs.Attributes["QueueArn"])
	require.Equal(t, "45", attrs.Attributes["VisibilityTimeout"])
	require.Equal(t, "2048", attrs.Attributes["MaximumMessageSize"])
	require.Equal(t, "1", attrs.Attributes["ReceiveMessageWaitTimeSeconds"])
	require.Equal(t, "345600", attrs.Attributes["MessageRetentionPeriod"])
	require.Equal(t, "0", attrs.Attributes["ApproximateNumberOfMessages"])
	require.NotEqual(t, "0", attrs.Attributes["CreatedTimestamp"])
	require.NotContains(t, attrs.Attributes, "FifoQueue")
	one, err := e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"DelaySeconds"}})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"DelaySeconds": "0"}, one.Attributes)
	_, err = e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"Colour"}})
	require.Equal(t, "InvalidAttributeName", code(t, err))

	_, err = e.c.TagQueue(ctx, &awssqs.TagQueueInput{QueueUrl: aws.String(url), Tags: map[string]string{"team": "billing", "empty": ""}})
	require.NoError(t, err)
	_, err = e.c.UntagQueue(ctx, &awssqs.UntagQueueInput{QueueUrl: aws.String(url), TagKeys: []string{"team"}})
	require.NoError(t, err)
	tags, err := e.c.ListQueueTags(ctx, &awssqs.ListQueueTagsInput{QueueUrl: aws.String(url)})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"empty": ""}, tags.Tags)

	// Purge drops every message; delete makes the queue unknown to SQS.
	e.send(url, "one")
	e.send(url, "two")
	require.EqualValues(t, 2, e.depth("r.eports"))
	_, err = e.c.PurgeQueue(ctx, &awssqs.PurgeQueueInput{QueueUrl: aws.String(url)})
	require.NoError(t, err)
	require.EqualValues(t, 0, e.depth("r.eports"))
	e.send(url, "three")
	_, err = e.c.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	require.NoError(t, err)
	_, err = e.api.Queue(ctx, "r.eports")
	require.ErrorIs(t, err, spool.ErrNotFound, "the Spool queue is deleted too")
	// A queue with a message in flight is deleted too (its message
	// cancelled).
	busy := e.create("Busy", nil)
	e.send(busy, "in flight")
	require.Len(t, e.receive(busy, 1, 0, 30), 1)
	_, err = e.c.DeleteQueue(ctx, &awssqs.DeleteQueueInput{QueueUrl: aws.String(busy)})
	require.NoError(t, err)
	_, err = e.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("Busy")})
	require.Equal(t, "AWS.SimpleQueueService.NonExistentQueue", code(t, err))
	list, err = e.c.ListQueues(ctx, &awssqs.ListQueuesInput{QueueNamePrefix: aws.String("Busy")})
	require.NoError(t, err)
	require.Empty(t, list.QueueUrls)
	_, err = e.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("Reports")})
	require.ErrorAs(t, err, &dne)
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
	require.ErrorAs(t, err, &dne)
	// Created again, with none of its old settings.
	require.Equal(t, url, e.create("Reports", nil))
	attrs, err = e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{"VisibilityTimeout"}})
	require.NoError(t, err)
	require.Equal(t, "30", attrs.Attributes["VisibilityTimeout"])
}

func testSendReceiveDelete(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("plain", nil)
	body := `<order id="7">naïve & "quoted"</order>`
	sent, err := e.c.SendMessage(ctx, &awssqs.SendMessageInput{
		QueueUrl:    aws.String(url),
		MessageBody: aws.String(body),
		MessageAttributes: map[string]types.MessageAttributeValue{
			"sample-attribute": {DataType: aws.String("String"), StringValue: aws.String("sample-value")},
			"count":            {DataType: aws.String("Number"), StringValue: aws.String("42")},
			"blob":             {DataType: aws.String("Binary"), BinaryValue: []byte{0, 1, 2, 255}},
		},
	})
	require.NoError(t, err) // the SDK checks MD5OfMessageBody itself
	require.Equal(t, fmt.Sprintf("%x", md5.Sum([]byte(body))), aws.ToString(sent.MD5OfMessageBody))
	require.Len(t, aws.ToString(sent.MD5OfMessageAttributes), 32)
	require.Nil(t, sent.SequenceNumber)

	msgs := e.receive(url, 10, 0, 30)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, *sent.MessageId, *m.MessageId)
	require.Equal(t, body, *m.Body)
	require.Equal(t, *sent.MD5OfMessageAttributes, *m.MD5OfMessageAttributes)
	require.Equal(t, "42", *m.MessageAttributes["count"].StringValue)
	require.Equal(t, []byte{0, 1, 2, 255}, m.MessageAttributes["blob"].BinaryValue)
	require.Equal(t, "1", m.Attributes["ApproximateReceiveCount"])
	require.NotEmpty(t, m.Attributes["SentTimestamp"])
	require.Equal(t, "000000000000", m.Attributes["SenderId"])

	// In flight: nothing else to receive.
	require.Empty(t, e.receive(url, 10, 0, 30))
	// Only some attributes asked for: the digest covers those.
	_, err = e.c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
	require.NoError(t, err)
	some, err := e.c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MessageAttributeNames: []string{"sample-attribute"}})
	require.NoError(t, err)
	require.Len(t, some.Messages, 1)
	require.Len(t, some.Messages[0].MessageAttributes, 1)
	require.Equal(t, "7c815262be77a62f56671125069ca888", *some.Messages[0].MD5OfMessageAttributes)
	require.Nil(t, some.Messages[0].Attributes)
	stale := m.ReceiptHandle
	m = some.Messages[0]

	// A stale receipt handle: delete changes nothing (as SQS documents),
	// a visibility change is refused.
	_, err = e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: stale})
	require.NoError(t, err)
	require.EqualValues(t, 1, e.depth("plain"))
	_, err = e.c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: stale, VisibilityTimeout: 60})
	require.Equal(t, "InvalidParameterValue", code(t, err))
	// A malformed one is invalid.
	_, err = e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: aws.String("not-a-handle")})
	var rh *types.ReceiptHandleIsInvalid
	require.ErrorAs(t, err, &rh)

	_, err = e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
	require.NoError(t, err)
	require.EqualValues(t, 0, e.depth("plain"))
	job, err := e.api.Get(ctx, *m.MessageId, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, job.State)
	// Deleted twice: still fine.
	_, err = e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
	require.NoError(t, err)

	// DelaySeconds: the message waits, scheduled.
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("later"), DelaySeconds: 600})
	require.NoError(t, err)
	require.Empty(t, e.receive(url, 10, 0, 30))
	attrs, err := e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(url), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	require.NoError(t, err)
	require.Equal(t, "1", attrs.Attributes["ApproximateNumberOfMessagesDelayed"])
}

func testVisibility(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("visibility", nil)
	sent := e.send(url, "again")
	first := e.receive(url, 1, 0, 1)
	require.Len(t, first, 1)
	// The visibility timeout lapses: the message comes back, received twice.
	second := e.receive(url, 1, 20, 30)
	require.Len(t, second, 1)
	require.Equal(t, *sent.MessageId, *second[0].MessageId)
	require.Equal(t, "2", second[0].Attributes["ApproximateReceiveCount"])
	require.NotEqual(t, *first[0].ReceiptHandle, *second[0].ReceiptHandle)
	// Extending the visibility of the current receipt works; 0 hands it back.
	_, err := e.c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 120})
	require.NoError(t, err)
	job, err := e.api.Get(ctx, *sent.MessageId, 0)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(120*time.Second), *job.LeaseExpiresAt, 10*time.Second)
	_, err = e.c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(url), ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 0})
	require.NoError(t, err)
	third := e.receive(url, 1, 5, 30)
	require.Len(t, third, 1)
	require.Equal(t, "3", third[0].Attributes["ApproximateReceiveCount"])
}

func testRedrive(t *testing.T, e *env) {
	ctx := t.Context()
	dlq := e.create("orders-dead", nil)
	attrs, err := e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(dlq), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	require.NoError(t, err)
	policy := `{"deadLetterTargetArn":"` + attrs.Attributes["QueueArn"] + `","maxReceiveCount":"2"}`
	src := e.create("orders-live", map[string]string{"RedrivePolicy": policy})
	got, err := e.c.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(src), AttributeNames: []types.QueueAttributeName{"RedrivePolicy"}})
	require.NoError(t, err)
	require.JSONEq(t, `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:orders-dead","maxReceiveCount":2}`, got.Attributes["RedrivePolicy"])
	info, err := e.api.Queue(ctx, "orders-live")
	require.NoError(t, err)
	require.Equal(t, "orders-dead", *info.Config.DeadLetterQueue)
	require.Equal(t, 2, *info.Config.MaxAttempts)

	sent := e.send(src, "poison")
	for i := 1; i <= 2; i++ {
		msgs := e.receive(src, 1, 5, 30)
		require.Len(t, msgs, 1, "receive %d", i)
		_, err := e.c.ChangeMessageVisibility(ctx, &awssqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(src), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 0})
		require.NoError(t, err)
	}
	// Received maxReceiveCount times: it moved to the dead-letter queue.
	require.Empty(t, e.receive(src, 1, 0, 30))
	dead := e.receive(dlq, 1, 5, 30)
	require.Len(t, dead, 1)
	require.Equal(t, "poison", *dead[0].Body)
	require.Equal(t, "arn:aws:sqs:us-east-1:000000000000:orders-live", dead[0].Attributes["DeadLetterQueueSourceArn"])
	job, err := e.api.Get(ctx, *sent.MessageId, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateDead, job.State)
	sources, err := e.c.ListDeadLetterSourceQueues(ctx, &awssqs.ListDeadLetterSourceQueuesInput{QueueUrl: aws.String(dlq)})
	require.NoError(t, err)
	require.Equal(t, []string{src}, sources.QueueUrls)

	// Removing the policy: back to no dead-letter queue.
	_, err = e.c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(src), Attributes: map[string]string{"RedrivePolicy": ""}})
	require.NoError(t, err)
	info, err = e.api.Queue(ctx, "orders-live")
	require.NoError(t, err)
	require.Equal(t, "", *info.Config.DeadLetterQueue)
	// A target that does not exist is refused.
	_, err = e.c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(src), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"arn:aws:sqs:us-east-1:000000000000:nowhere","maxReceiveCount":3}`}})
	require.Equal(t, "InvalidAttributeValue", code(t, err))
}

func testFIFO(t *testing.T, e *env) {
	ctx := t.Context()
	_, err := e.c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("jobs.fifo")})
	require.Equal(t, "InvalidParameterValue", code(t, err), "a .fifo name needs FifoQueue=true")
	url := e.create("Jobs.fifo", map[string]string{"FifoQueue": "true", "ContentBasedDeduplication": "true"})
	send := func(group, body, dedup string) *awssqs.SendMessageOutput {
		in := &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body), MessageGroupId: aws.String(group)}
		if dedup != "" {
			in.MessageDeduplicationId = aws.String(dedup)
		}
		out, err := e.c.SendMessage(ctx, in)
		require.NoError(t, err)
		return out
	}
	a1 := send("a", "a1", "")
	send("a", "a2", "")
	send("b", "b1", "")
	send("a", "a3", "x-3")
	// Duplicates within the window: the first message answers again.
	require.Equal(t, *a1.MessageId, *send("a", "a1", "").MessageId)
	require.Equal(t, *a1.SequenceNumber, *send("a", "a1", "").SequenceNumber)
	dup := send("b", "other body, same id", "x-3")
	require.NotEqual(t, *a1.MessageId, *dup.MessageId)
	require.EqualValues(t, 4, e.depth("j.obs.fifo"))

	// One message of a group in flight at a time, in order.
	first := e.receive(url, 10, 0, 30)
	bodies := []string{}
	for _, m := range first {
		bodies = append(bodies, *m.Body)
	}
	require.Equal(t, []string{"a1", "b1"}, bodies)
	require.Equal(t, "a", first[0].Attributes["MessageGroupId"])
	require.NotEmpty(t, first[0].Attributes["MessageDeduplicationId"])
	seq1, _ := strconv.ParseFloat(first[0].Attributes["SequenceNumber"], 64)
	require.Positive(t, seq1)
	require.Empty(t, e.receive(url, 10, 0, 30))
	for _, m := range first {
		_, err := e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		require.NoError(t, err)
	}
	next := e.receive(url, 10, 0, 30)
	require.Len(t, next, 1)
	require.Equal(t, "a2", *next[0].Body)
	seq2, _ := strconv.ParseFloat(next[0].Attributes["SequenceNumber"], 64)
	require.Greater(t, seq2, seq1)

	// FIFO rules: a group id is required, a per-message delay refused.
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
	require.Equal(t, "MissingParameter", code(t, err))
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x"), MessageGroupId: aws.String("a"), DelaySeconds: 5})
	require.Equal(t, "InvalidParameterValue", code(t, err))
	// Deduplication per group: the same id in two groups is two messages.
	scoped := e.create("scoped.fifo", map[string]string{"FifoQueue": "true", "DeduplicationScope": "messageGroup"})
	ids := map[string]bool{}
	for _, g := range []string{"g1", "g2", "g1"} {
		out, err := e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(scoped), MessageBody: aws.String("x"), MessageGroupId: aws.String(g), MessageDeduplicationId: aws.String("same")})
		require.NoError(t, err)
		ids[*out.MessageId] = true
	}
	require.Len(t, ids, 2)
	got := e.receive(scoped, 10, 0, 30)
	require.Len(t, got, 2)
	require.Equal(t, "same", got[0].Attributes["MessageDeduplicationId"])

	noCBD := e.create("strict.fifo", map[string]string{"FifoQueue": "true"})
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(noCBD), MessageBody: aws.String("x"), MessageGroupId: aws.String("a")})
	require.Equal(t, "InvalidParameterValue", code(t, err))
	require.EqualValues(t, 0, e.depth("strict.fifo"))
}

func testLongPoll(t *testing.T, e *env) {
	url := e.create("longpoll", nil)
	got := make(chan []types.Message, 1)
	go func() {
		out, err := e.c.ReceiveMessage(context.Background(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 20})
		if err != nil {
			got <- nil
			return
		}
		got <- out.Messages
	}()
	// The receive is waiting when its queue's waiter is there; sending
	// wakes it, whenever it started.
	e.send(url, "wake up")
	msgs := <-got
	require.Len(t, msgs, 1)
	require.Equal(t, "wake up", *msgs[0].Body)
	// Nothing to receive: an empty answer once the wait ends.
	out, err := e.c.ReceiveMessage(t.Context(), &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 1})
	require.NoError(t, err)
	require.Empty(t, out.Messages)
}

func testBatches(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("batches", nil)
	out, err := e.c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("ok1"), MessageBody: aws.String("one")},
		{Id: aws.String("bad"), MessageBody: aws.String("nul \x00 inside")},
		{Id: aws.String("ok2"), MessageBody: aws.String("two"), DelaySeconds: 0},
		{Id: aws.String("late"), MessageBody: aws.String("three"), DelaySeconds: 901},
	}})
	require.NoError(t, err)
	require.Len(t, out.Successful, 2)
	require.Equal(t, "ok1", *out.Successful[0].Id)
	require.Equal(t, "ok2", *out.Successful[1].Id)
	require.Len(t, out.Failed, 2)
	require.Equal(t, "bad", *out.Failed[0].Id)
	require.Equal(t, "InvalidMessageContents", *out.Failed[0].Code)
	require.True(t, out.Failed[0].SenderFault)
	require.Equal(t, "late", *out.Failed[1].Id)
	require.Equal(t, "InvalidParameterValue", *out.Failed[1].Code)
	require.EqualValues(t, 2, e.depth("batches"))

	msgs := e.receive(url, 10, 0, 30)
	require.Len(t, msgs, 2)
	// A visibility batch: one good, one stale-looking garbage handle.
	vis, err := e.c.ChangeMessageVisibilityBatch(ctx, &awssqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: []types.ChangeMessageVisibilityBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 60},
		{Id: aws.String("b"), ReceiptHandle: aws.String("garbage"), VisibilityTimeout: 60},
	}})
	require.NoError(t, err)
	require.Len(t, vis.Successful, 1)
	require.Len(t, vis.Failed, 1)
	require.Equal(t, "ReceiptHandleIsInvalid", *vis.Failed[0].Code)

	del, err := e.c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{
		{Id: aws.String("m0"), ReceiptHandle: msgs[0].ReceiptHandle},
		{Id: aws.String("m1"), ReceiptHandle: msgs[1].ReceiptHandle},
		{Id: aws.String("junk"), ReceiptHandle: aws.String("junk")},
	}})
	require.NoError(t, err)
	require.Len(t, del.Successful, 2)
	require.Len(t, del.Failed, 1)
	require.Equal(t, "junk", *del.Failed[0].Id)
	require.Equal(t, "ReceiptHandleIsInvalid", *del.Failed[0].Code)
	require.EqualValues(t, 0, e.depth("batches"))

	// Whole-request errors.
	_, err = e.c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("same"), MessageBody: aws.String("1")}, {Id: aws.String("same"), MessageBody: aws.String("2")},
	}})
	var dist *types.BatchEntryIdsNotDistinct
	require.ErrorAs(t, err, &dist)
	entries := make([]types.SendMessageBatchRequestEntry, 11)
	for i := range entries {
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String("e" + strconv.Itoa(i)), MessageBody: aws.String("x")}
	}
	_, err = e.c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
	var many *types.TooManyEntriesInBatchRequest
	require.ErrorAs(t, err, &many)
	_, err = e.c.DeleteMessageBatch(ctx, &awssqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.DeleteMessageBatchRequestEntry{}})
	var emptyBatch *types.EmptyBatchRequest
	require.ErrorAs(t, err, &emptyBatch)
	require.EqualValues(t, 0, e.depth("batches"))
}

func testBackPressure(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("bounded", nil)
	_, err := e.api.UpdateQueue(ctx, "bounded", spool.QueueConfig{MaxDepth: ptr(int64(2))})
	require.NoError(t, err)
	e.send(url, "1")

	// A batch that does not fit stores nothing: refused whole, with the
	// throttling error the SDKs retry.
	_, err = e.c.SendMessageBatch(ctx, &awssqs.SendMessageBatchInput{QueueUrl: aws.String(url), Entries: []types.SendMessageBatchRequestEntry{
		{Id: aws.String("a"), MessageBody: aws.String("a")}, {Id: aws.String("b"), MessageBody: aws.String("b")},
	}})
	var thr *types.RequestThrottled
	require.ErrorAs(t, err, &thr)
	var re interface{ HTTPStatusCode() int }
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusServiceUnavailable, re.HTTPStatusCode())
	require.EqualValues(t, 1, e.depth("bounded"))
	e.send(url, "2")

	// The SDK's standard retryer retries until there is room.
	before := e.throttled.Load()
	done := make(chan error, 1)
	var attempts int
	go func() {
		out, err := e.sdk(100).SendMessage(context.Background(), &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("3")})
		if err == nil {
			r, _ := retry.GetAttemptResults(out.ResultMetadata)
			attempts = len(r.Results)
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return e.throttled.Load() >= before+2 }, 20*time.Second, 5*time.Millisecond, "the SDK did not retry")
	msgs := e.receive(url, 1, 0, 30)
	require.Len(t, msgs, 1)
	_, err = e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: msgs[0].ReceiptHandle})
	require.NoError(t, err)
	require.NoError(t, <-done)
	require.Greater(t, attempts, 2)
	require.EqualValues(t, 2, e.depth("bounded"))
}

func testBadInput(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("strict", nil)
	for _, tc := range []struct {
		name string
		in   *awssqs.SendMessageInput
		code string
	}{
		{"empty body", &awssqs.SendMessageInput{MessageBody: aws.String("")}, "MissingParameter"},
		{"control character", &awssqs.SendMessageInput{MessageBody: aws.String("a\x01b")}, "InvalidMessageContents"},
		{"delay", &awssqs.SendMessageInput{MessageBody: aws.String("x"), DelaySeconds: 901}, "InvalidParameterValue"},
		{"dedup on standard", &awssqs.SendMessageInput{MessageBody: aws.String("x"), MessageDeduplicationId: aws.String("d")}, "InvalidParameterValue"},
		{"reserved attribute", &awssqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{
			"AWS.x": {DataType: aws.String("String"), StringValue: aws.String("v")}}}, "InvalidParameterValue"},
		{"bad attribute type", &awssqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{
			"n": {DataType: aws.String("Colour"), StringValue: aws.String("v")}}}, "InvalidParameterValue"},
		{"not a number", &awssqs.SendMessageInput{MessageBody: aws.String("x"), MessageAttributes: map[string]types.MessageAttributeValue{
			"n": {DataType: aws.String("Number"), StringValue: aws.String("twelve")}}}, "InvalidParameterValue"},
	} {
		tc.in.QueueUrl = aws.String(url)
		_, err := e.c.SendMessage(ctx, tc.in)
		require.Equal(t, tc.code, code(t, err), tc.name)
	}
	_, err := e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(string(bytesOf('x', 262145)))})
	require.Equal(t, "InvalidParameterValue", code(t, err), "over MaximumMessageSize")
	require.EqualValues(t, 0, e.depth("strict"))

	for name, attrs := range map[string]map[string]string{
		"VisibilityTimeout":  {"VisibilityTimeout": "43201"},
		"DelaySeconds":       {"DelaySeconds": "soon"},
		"RedrivePolicy JSON": {"RedrivePolicy": "{"},
		"FifoQueue":          {"FifoQueue": "true"},
	} {
		_, err := e.c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: attrs})
		require.Error(t, err, name)
	}
	_, err = e.c.SetQueueAttributes(ctx, &awssqs.SetQueueAttributesInput{QueueUrl: aws.String(url), Attributes: map[string]string{"Colour": "blue"}})
	require.Equal(t, "InvalidAttributeName", code(t, err))
	_, err = e.c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 11})
	require.Equal(t, "InvalidParameterValue", code(t, err))
	_, err = e.c.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), WaitTimeSeconds: 21})
	require.Equal(t, "InvalidParameterValue", code(t, err))
	_, err = e.c.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("no spaces")})
	require.Equal(t, "InvalidParameterValue", code(t, err))
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(e.sqsURL + "/000000000000/nowhere"), MessageBody: aws.String("x")})
	var dne *types.QueueDoesNotExist
	require.ErrorAs(t, err, &dne)
	_, err = e.api.Queue(ctx, "nowhere")
	require.ErrorIs(t, err, spool.ErrNotFound)
	// The refused attributes changed nothing.
	info, err := e.api.Queue(ctx, "strict")
	require.NoError(t, err)
	require.NotContains(t, info.Config.Attributes, "sqs.attr.VisibilityTimeout")
	require.NotContains(t, info.Config.Attributes, "sqs.attr.DelaySeconds")
	require.Equal(t, "", *info.Config.DeadLetterQueue)
}

func testCrossAPI(t *testing.T, e *env) {
	ctx := t.Context()
	url := e.create("cross", nil)
	// SQS to Spool: a job of type "sqs" whose payload is the body.
	sent := e.send(url, "from sqs")
	job, err := e.api.Get(ctx, *sent.MessageId, 0)
	require.NoError(t, err)
	require.Equal(t, "sqs", job.Type)
	require.JSONEq(t, `"from sqs"`, string(job.Payload))
	leased, err := e.api.Lease(ctx, spool.LeaseRequest{Queues: []string{"cross"}, Max: 10})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	_, err = e.api.Complete(ctx, leased[0].ID, spool.CompleteRequest{Token: leased[0].Lease.Token})
	require.NoError(t, err)

	// Spool to SQS: a JSON payload is the body; a string payload is the
	// string.
	j1, _, err := e.api.Enqueue(ctx, "cross", spool.EnqueueRequest{Type: "report", Payload: json.RawMessage(`{"id": 7}`)})
	require.NoError(t, err)
	_, _, err = e.api.Enqueue(ctx, "cross", spool.EnqueueRequest{Type: "note", Payload: json.RawMessage(`"plain text"`)})
	require.NoError(t, err)
	msgs := e.receive(url, 10, 0, 30)
	require.Len(t, msgs, 2)
	require.Equal(t, j1.ID, *msgs[0].MessageId)
	require.JSONEq(t, `{"id": 7}`, *msgs[0].Body)
	require.Equal(t, "plain text", *msgs[1].Body)
	for _, m := range msgs {
		_, err := e.c.DeleteMessage(ctx, &awssqs.DeleteMessageInput{QueueUrl: aws.String(url), ReceiptHandle: m.ReceiptHandle})
		require.NoError(t, err)
	}
	done, err := e.api.Get(ctx, j1.ID, 0)
	require.NoError(t, err)
	require.Equal(t, spool.StateSucceeded, done.State)

	// A dead-letter queue set through Spool's API (PATCH /v1/queues/{q}):
	// a job failed there for good is received through SQS from it.
	_, err = e.api.UpdateQueue(ctx, "http-jobs", spool.QueueConfig{DeadLetterQueue: ptr("http-dead"), MaxAttempts: ptr(1)})
	require.NoError(t, err)
	info, err := e.api.Queue(ctx, "http-jobs")
	require.NoError(t, err)
	require.Equal(t, "http-dead", *info.Config.DeadLetterQueue)
	failing, _, err := e.api.Enqueue(ctx, "http-jobs", spool.EnqueueRequest{Type: "t", Payload: json.RawMessage(`{"n":1}`)})
	require.NoError(t, err)
	leased, err = e.api.Lease(ctx, spool.LeaseRequest{Queues: []string{"http-jobs"}})
	require.NoError(t, err)
	require.Len(t, leased, 1)
	_, err = e.api.Fail(ctx, failing.ID, spool.FailRequest{Token: leased[0].Lease.Token, Error: "boom"})
	require.NoError(t, err)
	dlq, err := e.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("http-dead")})
	require.NoError(t, err)
	dead := e.receive(*dlq.QueueUrl, 1, 5, 30)
	require.Len(t, dead, 1)
	require.JSONEq(t, `{"n":1}`, *dead[0].Body)
	require.Equal(t, "arn:aws:sqs:us-east-1:000000000000:http-jobs", dead[0].Attributes["DeadLetterQueueSourceArn"])

	// A queue made by Spool's API is an SQS queue too.
	_, _, err = e.api.Enqueue(ctx, "made-by-http", spool.EnqueueRequest{Type: "t"})
	require.NoError(t, err)
	got, err := e.c.GetQueueUrl(ctx, &awssqs.GetQueueUrlInput{QueueName: aws.String("made-by-http")})
	require.NoError(t, err)
	msgs = e.receive(*got.QueueUrl, 1, 0, 30)
	require.Len(t, msgs, 1)
	require.Equal(t, "null", *msgs[0].Body)
}

func ptr[T any](v T) *T { return &v }

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

// TestDiskFull: a send refused for a full disk is a 503 the SDKs retry,
// and stores nothing.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	e := start(t, server.Config{DataDir: t.TempDir(), MinFreeSpace: "1GiB",
		DiskStat: func(string) (diskspace.Usage, error) { return diskspace.Usage{Free: 1 << 20, Total: 100 << 30}, nil }})
	url := e.create("full", nil)
	_, err := e.c.SendMessage(t.Context(), &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
	require.Equal(t, "ServiceUnavailable", code(t, err))
	var re interface{ HTTPStatusCode() int }
	require.ErrorAs(t, err, &re)
	require.Equal(t, http.StatusServiceUnavailable, re.HTTPStatusCode())
	require.EqualValues(t, 0, e.depth("full"))
}
