"""notify's domain: plain Python, no I/O. What to send to whom (`rules`, `directory`, `planning`),
what notify knows about a ticket (`ticket_context`), the message texts (`templates`), when to try
again (`retry`) and where a notice stands on its way out (`delivery`). The service wires senders,
storage and the event consumer around it."""
