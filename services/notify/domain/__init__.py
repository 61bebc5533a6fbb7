"""notify's domain: plain Python, no I/O. What to send to whom (`rules`, `directory`, `planning`),
what notify knows about a ticket (`ticket_context`), the message texts (`templates`) and when to
try again (`retry`). The service wires senders, storage and the event consumer around it."""
