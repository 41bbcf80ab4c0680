"""The ops manager's console in the admin: the job page's charts, Markdown, and the job admin's extra views."""
