"""One module per page (or part of the index page): each turns store records into the
view its template renders."""
