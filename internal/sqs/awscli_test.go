package sqs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/spoolq/spool/server"
)

// debianAWS is Debian's aws command (package awscli), which speaks the
// query protocol and checks the MD5 digests of what it sends and receives.
const debianAWS = "/usr/bin/aws"

// TestAWSCommandLine drives the aws command against the real listener.
func TestAWSCommandLine(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(debianAWS); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing under CI (apt-get install awscli; .ci/run installs it)", debianAWS)
		}
		t.Skipf("%s is missing (apt-get install awscli)", debianAWS)
	}
	e := start(t, server.Config{DataDir: t.TempDir()})
	home := t.TempDir()
	aws := func(args ...string) (map[string]any, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, debianAWS, append([]string{"--endpoint-url", e.sqsURL, "--output", "json", "sqs"}, args...)...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin", "AWS_ACCESS_KEY_ID=AKIDSPOOLCLI", "AWS_SECRET_ACCESS_KEY=open-mode",
			"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=" + home + "/none", "AWS_SHARED_CREDENTIALS_FILE=" + home + "/none"}
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		var v map[string]any
		if out.Len() > 0 {
			require.NoError(t, json.Unmarshal(out.Bytes(), &v), out.String())
		}
		return v, errb.String(), err
	}
	must := func(args ...string) map[string]any {
		t.Helper()
		v, stderr, err := aws(args...)
		require.NoError(t, err, "aws %s: %s", strings.Join(args, " "), stderr)
		return v
	}

	created := must("create-queue", "--queue-name", "CliQueue", "--attributes", "VisibilityTimeout=40")
	url := created["QueueUrl"].(string)
	require.Equal(t, e.sqsURL+"/000000000000/CliQueue", url)

	sent := must("send-message", "--queue-url", url, "--message-body", "hello from the aws command: <&>",
		"--message-attributes", `{"kind":{"DataType":"String","StringValue":"greeting"},"n":{"DataType":"Number","StringValue":"3"}}`)
	require.NotEmpty(t, sent["MessageId"])
	require.NotEmpty(t, sent["MD5OfMessageAttributes"])

	batch := must("send-message-batch", "--queue-url", url, "--entries", `[{"Id":"a","MessageBody":"one"},{"Id":"b","MessageBody":"two","DelaySeconds":0}]`)
	require.Len(t, batch["Successful"], 2)

	got := must("receive-message", "--queue-url", url, "--attribute-names", "All", "--message-attribute-names", "All", "--max-number-of-messages", "10")
	msgs := got["Messages"].([]any)
	require.Len(t, msgs, 3)
	first := msgs[0].(map[string]any)
	require.Equal(t, "hello from the aws command: <&>", first["Body"])
	require.Equal(t, "greeting", first["MessageAttributes"].(map[string]any)["kind"].(map[string]any)["StringValue"])
	require.Equal(t, "1", first["Attributes"].(map[string]any)["ApproximateReceiveCount"])
	for _, m := range msgs {
		must("delete-message", "--queue-url", url, "--receipt-handle", m.(map[string]any)["ReceiptHandle"].(string))
	}
	require.EqualValues(t, 0, e.depth("c.liq.ueue"))

	attrs := must("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")
	require.Equal(t, "40", attrs["Attributes"].(map[string]any)["VisibilityTimeout"])
	list := must("list-queues", "--queue-name-prefix", "Cli")
	require.Equal(t, []any{url}, list["QueueUrls"])

	_, stderr, err := aws("get-queue-url", "--queue-name", "Nowhere")
	require.Error(t, err)
	require.Contains(t, stderr, "NonExistentQueue")
	_, stderr, err = aws("send-message", "--queue-url", url, "--message-body", "x", "--delay-seconds", "901")
	require.Error(t, err)
	require.Contains(t, stderr, "InvalidParameterValue")
	require.EqualValues(t, 0, e.depth("c.liq.ueue"))
}
