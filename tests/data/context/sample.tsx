import React from "react";

interface Props {
  title: string;
}

export function Header(props: Props): JSX.Element {
  const upper = props.title.toUpperCase();
  return <h1 className="title">{upper}</h1>;
}

export class Page extends React.Component<Props> {
  render() {
    return <Header title={formatTitle(this.props.title)} />;
  }
}

function formatTitle(title: string): string {
  return title.trim();
}
