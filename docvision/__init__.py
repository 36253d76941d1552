"""docvision: ask questions about any document with a local vision-language model.

Sources (PDFs, images, web pages, spreadsheets, office files) become Documents of Pages;
each page is planned at the InternLM-XComposer2-4KHD dynamic resolution (``docvision.tiling``)
and shown to a vision-language model backend.
"""

__version__ = "0.1.0"
SCHEMA_VERSION = 2  # docs/records.md; CHANGELOG.md says what each version changed
