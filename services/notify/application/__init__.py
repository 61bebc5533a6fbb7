"""notify's use cases: `recording` (an event → stored notices, in the consumer's transaction),
`delivering` (due notices → senders → outcomes), `inbox` (ListNotifications, RetryNotification,
who may see what); their ports in `ports`."""
