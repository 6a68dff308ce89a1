package sqs_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/internal/auth"
	"github.com/spoolq/spool/server"
)

// TestServerKeys: the SQS listener of a real server runs open while no key
// exists (only for the names it serves, only reads by GET), and checks
// Signature Version 4 against the server's keys, roles and scopes once
// one does.
func TestServerKeys(t *testing.T) {
	t.Parallel()
	e := start(t, server.Config{DataDir: t.TempDir(), SecretKey: strings.Repeat("ab", 32)})
	ctx := t.Context()

	// Open: any credentials.
	url := e.create("orders", nil)
	e.send(url, "open")
	// A foreign Host is refused while open; a GET may only read.
	req, err := http.NewRequest(http.MethodPost, e.sqsURL+"/", strings.NewReader("Action=ListQueues"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Host = "rebound.example"
	r := e.roundTrip(req)
	require.Equal(t, http.StatusForbidden, r.status, string(r.body))
	require.Contains(t, string(r.body), "<Code>AccessDenied</Code>")
	req, err = http.NewRequest(http.MethodGet, e.sqsURL+"/?Action=SendMessage&QueueUrl=orders&MessageBody=img", nil)
	require.NoError(t, err)
	r = e.roundTrip(req)
	require.Equal(t, http.StatusMethodNotAllowed, r.status, string(r.body))
	require.EqualValues(t, 1, e.depth("orders"))

	admin, err := e.srv.Keyring().Create(context.Background(), auth.CreateParams{Name: "admin", Roles: []string{"admin"}})
	require.NoError(t, err)
	prod, err := e.srv.Keyring().Create(context.Background(), auth.CreateParams{Name: "producer", Roles: []string{"producer"}, Queues: []string{"orders*"}})
	require.NoError(t, err)

	// Keys exist: the open client's made-up credentials no longer work.
	_, err = e.c.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("x")})
	require.Equal(t, "InvalidClientTokenId", code(t, err))

	a := sdkFor(e.sqsURL, admin.ID, admin.Secret, e.sqsHC)
	out, err := a.CreateQueue(ctx, &awssqs.CreateQueueInput{QueueName: aws.String("billing")})
	require.NoError(t, err)
	billing := *out.QueueUrl
	_, err = sdkFor(e.sqsURL, admin.ID, admin.Secret+"x", e.sqsHC).ListQueues(ctx, &awssqs.ListQueuesInput{})
	require.Equal(t, "SignatureDoesNotMatch", code(t, err))

	p := sdkFor(e.sqsURL, prod.ID, prod.Secret, e.sqsHC)
	_, err = p.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("signed")})
	require.NoError(t, err)
	_, err = p.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(billing), MessageBody: aws.String("out of scope")})
	require.Equal(t, "AccessDenied", code(t, err))
	_, err = p.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url)})
	require.Equal(t, "AccessDenied", code(t, err))
	got, err := a.ReceiveMessage(ctx, &awssqs.ReceiveMessageInput{QueueUrl: aws.String(url), MaxNumberOfMessages: 10})
	require.NoError(t, err)
	require.Len(t, got.Messages, 2)
	attrs, err := a.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(billing), AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll}})
	require.NoError(t, err)
	require.Equal(t, "0", attrs.Attributes["ApproximateNumberOfMessages"], "the refused send stored nothing")

	// A revoked key stops signing.
	_, err = e.srv.Keyring().Revoke(context.Background(), prod.ID)
	require.NoError(t, err)
	_, err = p.SendMessage(ctx, &awssqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String("revoked")})
	require.Equal(t, "InvalidClientTokenId", code(t, err))
}
