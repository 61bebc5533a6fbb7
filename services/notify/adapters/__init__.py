"""notify's adapters: the wire formats of its channels (`formats`, pure) and building them when a
notice is stored (`composer`); the senders (`senders`: SMTP, HTTP); the SQL stores (`sql_store`,
`tables`, `migrations`); the configuration folder kept current (`config_files`); and decoding
events off the stream (`event_codec`)."""
