"""engine.rag: documents -> text with its place -> chunks -> index -> retrieval -> citations.

Reading documents (this part):
    parser.DocumentParser       the app's side: one child process reads the files, under limits
    parse_child                 that child (`python -m engine.rag.parse_child`)
    loaders.load_document       path -> ParsedDocument, by kind (formats.document_kind)
    pdf, docx, epub, html, markdown, text     one reader per format; safe_zip, safe_xml guard them
    document.ParsedDocument     the result (sections with page / lines / heading path)
    errors                      DocumentError and its kinds (encrypted, damaged, binary, zip bomb ...)
"""
