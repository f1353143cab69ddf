[
  inputs: ["{mix,.formatter}.exs", "{config,lib,test}/**/*.{ex,exs}"],
  locals_without_parens: [agent: 2],
  export: [locals_without_parens: [agent: 2]]
]
