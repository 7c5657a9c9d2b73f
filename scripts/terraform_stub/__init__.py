"""A stand-in for the google and google-beta terraform providers: their schema, read from the
published CDK Terrain bindings, served over terraform's plugin protocol 6 so that
`terraform validate` checks infra/ offline (scripts/terraform_check.py)."""
