"""Who is asking: bearer tokens turned into a viewer, once per request, cached briefly."""
