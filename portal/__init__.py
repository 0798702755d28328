"""The incident portal: HTML pages, a JSON read API and a Server-Sent Events stream over the incident store."""
